#include "tools/launch/backoff.h"

#include <algorithm>

namespace bevrpc::launch {

std::optional<absl::Duration> RestartBackoff::OnExit(absl::Duration uptime) {
  if (uptime >= policy_.stable_after) fast_failures_ = 0;
  ++fast_failures_;
  if (fast_failures_ > policy_.max_fast_failures) return std::nullopt;
  absl::Duration delay = policy_.initial;
  for (int i = 1; i < fast_failures_ && delay < policy_.max; ++i) {
    delay *= policy_.multiplier;
  }
  delay = std::min(delay, policy_.max);
  std::uniform_real_distribution<double> spread(1.0 - policy_.jitter,
                                                1.0 + policy_.jitter);
  return delay * spread(rng_);
}

}  // namespace bevrpc::launch
