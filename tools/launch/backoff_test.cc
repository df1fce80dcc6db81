#include "tools/launch/backoff.h"

#include "gtest/gtest.h"

namespace bevrpc::launch {
namespace {

constexpr absl::Duration kFast = absl::Seconds(1);

TEST(RestartBackoffTest, GrowsWithJitterWithinBoundsAndGivesUp) {
  BackoffPolicy policy;  // 100 ms, x2, 30 s max, +-20 %, 5 fast failures.
  for (uint64_t seed = 0; seed < 50; ++seed) {
    RestartBackoff backoff(policy, seed);
    absl::Duration base = absl::Milliseconds(100);
    for (int i = 1; i <= 5; ++i) {
      std::optional<absl::Duration> d = backoff.OnExit(kFast);
      ASSERT_TRUE(d.has_value()) << i;
      EXPECT_GE(*d, base * 0.8) << i;
      EXPECT_LE(*d, base * 1.2) << i;
      EXPECT_EQ(backoff.fast_failures(), i);
      base *= 2;
    }
    EXPECT_FALSE(backoff.OnExit(kFast).has_value());  // The 6th: give up.
  }
}

TEST(RestartBackoffTest, CapsAtMax) {
  BackoffPolicy policy;
  policy.max = absl::Milliseconds(300);
  policy.jitter = 0;
  policy.max_fast_failures = 100;
  RestartBackoff backoff(policy, 1);
  absl::Duration last;
  for (int i = 0; i < 20; ++i) last = *backoff.OnExit(kFast);
  EXPECT_EQ(last, absl::Milliseconds(300));
}

TEST(RestartBackoffTest, StableRunForgetsFailures) {
  BackoffPolicy policy;
  policy.jitter = 0;
  RestartBackoff backoff(policy, 1);
  for (int i = 0; i < 5; ++i) backoff.OnExit(kFast);
  EXPECT_EQ(backoff.fast_failures(), 5);
  EXPECT_EQ(*backoff.OnExit(policy.stable_after), absl::Milliseconds(100));
  EXPECT_EQ(backoff.fast_failures(), 1);
  backoff.Reset();
  EXPECT_EQ(backoff.fast_failures(), 0);
  EXPECT_EQ(*backoff.OnExit(kFast), absl::Milliseconds(100));
}

}  // namespace
}  // namespace bevrpc::launch
