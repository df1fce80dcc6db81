// Backoff: jittered exponential delays for reconnect and retry loops.
//
//   internal::Backoff backoff(absl::Milliseconds(100), absl::Seconds(5));
//   timer.Start(backoff.Next(), [&] { Retry(); });   // 100 ms +-20 %, 200 ms..
//   backoff.Reset();                                  // after a success
//
// Each Next() returns the current delay randomised by +-`jitter` (so many
// clients that lost the same server do not come back in step), then
// multiplies it by `multiplier` up to the cap. Used by channels' reconnects
// (gRPC's connection backoff: 1 s, x1.6, +-20 %, 120 s), the etcd client
// and registrar, and DNS retries. Small (no per-object RNG tables): one
// lives in every connection slot. Not thread-safe: one owner.
#ifndef BEVRPC_RPC_NAMING_INTERNAL_BACKOFF_H_
#define BEVRPC_RPC_NAMING_INTERNAL_BACKOFF_H_

#include <algorithm>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace bevrpc::naming::internal {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max, double multiplier = 2.0,
          double jitter = 0.2)
      : initial_(std::max(initial, absl::Milliseconds(1))),
        max_(std::max(max, initial_)),
        multiplier_(std::max(multiplier, 1.0)),
        jitter_(std::clamp(jitter, 0.0, 1.0)),
        next_(initial_),
        state_(reinterpret_cast<uintptr_t>(this) ^
               static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()))) {}

  absl::Duration Next() {
    absl::Duration d = next_;
    next_ = std::min(next_ * multiplier_, max_);
    return d * (1.0 + jitter_ * (2.0 * Uniform() - 1.0));
  }
  void Reset() { next_ = initial_; }
  // The delay the next Next() is based on (before jitter).
  absl::Duration current() const { return next_; }

 private:
  // Uniform in [0, 1): splitmix64.
  double Uniform() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) / static_cast<double>(uint64_t{1} << 53);
  }

  absl::Duration initial_;
  absl::Duration max_;
  double multiplier_;
  double jitter_;
  absl::Duration next_;
  uint64_t state_;
};

}  // namespace bevrpc::naming::internal

#endif  // BEVRPC_RPC_NAMING_INTERNAL_BACKOFF_H_
