// Backoff: jittered exponential delays for reconnect and retry loops.
//
//   internal::Backoff backoff(absl::Milliseconds(100), absl::Seconds(5));
//   timer.Start(backoff.Next(), [&] { Retry(); });   // 100 ms +-20 %, 200 ms..
//   backoff.Reset();                                  // after a success
//
// Each Next() returns the current delay with +-20 % jitter (so many clients
// that lost the same server do not come back in step), then doubles it up
// to the cap. Not thread-safe: one owner.
#ifndef BEVRPC_RPC_NAMING_INTERNAL_BACKOFF_H_
#define BEVRPC_RPC_NAMING_INTERNAL_BACKOFF_H_

#include <algorithm>
#include <random>

#include "absl/time/time.h"

namespace bevrpc::naming::internal {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max)
      : initial_(std::max(initial, absl::Milliseconds(1))),
        max_(std::max(max, initial_)),
        next_(initial_),
        rng_(std::random_device{}()) {}

  absl::Duration Next() {
    absl::Duration d = next_;
    next_ = std::min(next_ * 2, max_);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    return d * jitter(rng_);
  }
  void Reset() { next_ = initial_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration next_;
  std::mt19937 rng_;
};

}  // namespace bevrpc::naming::internal

#endif  // BEVRPC_RPC_NAMING_INTERNAL_BACKOFF_H_
