#include "rpc/naming/internal/backoff.h"

#include "gtest/gtest.h"

namespace bevrpc::naming::internal {
namespace {

TEST(BackoffTest, GrowsByTheMultiplierWithinJitterUpToTheCap) {
  Backoff b(absl::Seconds(1), absl::Seconds(5), 1.6, 0.2);
  absl::Duration base = absl::Seconds(1);
  for (int i = 0; i < 10; ++i) {
    absl::Duration d = b.Next();
    EXPECT_GE(d, base * 0.8) << i;
    EXPECT_LE(d, base * 1.2) << i;
    base = std::min(base * 1.6, absl::Seconds(5));
  }
  EXPECT_EQ(b.current(), absl::Seconds(5));
  b.Reset();
  EXPECT_EQ(b.current(), absl::Seconds(1));
}

TEST(BackoffTest, JitterSpreadsDelays) {
  Backoff a(absl::Seconds(1), absl::Seconds(1), 2.0, 0.2);
  absl::Duration lo = absl::InfiniteDuration(), hi = absl::ZeroDuration();
  for (int i = 0; i < 1000; ++i) {
    absl::Duration d = a.Next();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, absl::Milliseconds(850));
  EXPECT_GT(hi, absl::Milliseconds(1150));
  Backoff none(absl::Seconds(1), absl::Seconds(8), 2.0, 0.0);
  EXPECT_EQ(none.Next(), absl::Seconds(1));
  EXPECT_EQ(none.Next(), absl::Seconds(2));
}

}  // namespace
}  // namespace bevrpc::naming::internal
