// When to start a replica again after it exited: exponential backoff with
// jitter, reset once a process stayed up for a stable period, and giving
// up (FATAL) after repeated fast failures.
//
//   RestartBackoff backoff(BackoffPolicy{}, /*seed=*/pid);
//   std::optional<absl::Duration> delay = backoff.OnExit(uptime);
//   if (!delay) { /* FATAL: gave up */ } else { /* start after *delay */ }
//
// A process that ran at least `stable_after` before it ended forgets the
// failures before it. A failure that comes sooner is "fast": the first
// waits `initial`, each next one `multiplier` times longer (at most `max`),
// each randomised by +-`jitter`; after `max_fast_failures` fast failures in
// a row OnExit() gives up. Not thread-safe (one per replica, used by its
// owner).
#ifndef BEVRPC_TOOLS_LAUNCH_BACKOFF_H_
#define BEVRPC_TOOLS_LAUNCH_BACKOFF_H_

#include <cstdint>
#include <optional>
#include <random>

#include "absl/time/time.h"

namespace bevrpc::launch {

struct BackoffPolicy {
  // Delay before the first restart after a fast failure. Default: 100 ms.
  absl::Duration initial = absl::Milliseconds(100);
  // Growth per further fast failure. Default: 2.
  double multiplier = 2.0;
  // Longest delay. Default: 30 s.
  absl::Duration max = absl::Seconds(30);
  // Each delay is randomised by +- this share. Default: 0.2.
  double jitter = 0.2;
  // Up this long, a process counts as stable: its exit is not a fast
  // failure and earlier failures are forgotten. Default: 10 s.
  absl::Duration stable_after = absl::Seconds(10);
  // Fast failures in a row after which OnExit() gives up. Default: 5.
  int max_fast_failures = 5;
};

class RestartBackoff {
 public:
  RestartBackoff(BackoffPolicy policy, uint64_t seed)
      : policy_(policy), rng_(seed) {}

  // A process that ran for `uptime` ended (or was killed for not getting
  // ready): the delay before starting it again, or nullopt to give up.
  std::optional<absl::Duration> OnExit(absl::Duration uptime);

  // Forgets past failures (an operator's Start).
  void Reset() { fast_failures_ = 0; }

  // Fast failures in a row so far.
  int fast_failures() const { return fast_failures_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  int fast_failures_ = 0;
};

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_BACKOFF_H_
