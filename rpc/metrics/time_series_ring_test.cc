#include "rpc/metrics/time_series_ring.h"

#include "gtest/gtest.h"

namespace bevrpc::metrics {
namespace {

absl::Time T(int s) { return absl::UnixEpoch() + absl::Seconds(s); }

TEST(TimeSeriesRingTest, KeepsTheNewestCapacitySamples) {
  TimeSeriesRing<int> ring(3);
  EXPECT_EQ(ring.Newest(), nullptr);
  EXPECT_EQ(ring.AtOrBefore(T(100)), nullptr);
  for (int i = 1; i <= 10; ++i) ring.Push(T(i), i * 10);
  ASSERT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.at(0).value, 80);
  EXPECT_EQ(ring.at(1).value, 90);
  EXPECT_EQ(ring.at(2).value, 100);
  EXPECT_EQ(ring.Newest()->time, T(10));
}

TEST(TimeSeriesRingTest, AtOrBefore) {
  TimeSeriesRing<int> ring(5);
  for (int i = 1; i <= 7; ++i) ring.Push(T(2 * i), i);  // t = 6,8,10,12,14 kept
  EXPECT_EQ(ring.AtOrBefore(T(5)), nullptr);
  EXPECT_EQ(ring.AtOrBefore(T(6))->value, 3);
  EXPECT_EQ(ring.AtOrBefore(T(11))->value, 5);
  EXPECT_EQ(ring.AtOrBefore(T(100))->value, 7);
}

TEST(TimeSeriesRingTest, CapacityZeroMeansOne) {
  TimeSeriesRing<int> ring(0);
  ring.Push(T(1), 1);
  ring.Push(T(2), 2);
  EXPECT_EQ(ring.size(), 1u);
  EXPECT_EQ(ring.Newest()->value, 2);
}

}  // namespace
}  // namespace bevrpc::metrics
