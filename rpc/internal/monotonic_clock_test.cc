#include "rpc/internal/monotonic_clock.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace bevrpc::internal {
namespace {

TEST(MonotonicClockTest, NeverGoesBack) {
  int64_t last = MonotonicNanos();
  for (int i = 0; i < 1'000'000; ++i) {
    const int64_t now = MonotonicNanos();
    ASSERT_GE(now, last) << "read " << i;
    last = now;
  }
}

TEST(MonotonicClockTest, NeverGoesBackAcrossThreads) {
  // Each thread publishes its reading; another thread's later reading must
  // not be earlier than a value it has seen published.
  std::atomic<int64_t> latest{0};
  std::atomic<int> backwards{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200'000; ++i) {
        const int64_t seen = latest.load(std::memory_order_acquire);
        const int64_t now = MonotonicNanos();
        if (now < seen) backwards.fetch_add(1);
        int64_t cur = latest.load(std::memory_order_relaxed);
        while (now > cur && !latest.compare_exchange_weak(cur, now)) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(backwards.load(), 0);
}

TEST(MonotonicClockTest, AgreesWithSteadyClockOnIntervals) {
  const int64_t steady_start = clock_internal::SteadyNanos();
  const int64_t start = MonotonicNanos();
  // Busy for at least 50 ms of steady time (no sleep: the same interval is
  // measured by both clocks, however long it takes).
  while (clock_internal::SteadyNanos() - steady_start < 50'000'000) {
  }
  const int64_t elapsed = MonotonicNanos() - start;
  const int64_t steady_elapsed = clock_internal::SteadyNanos() - steady_start;
  // The calibration is good to about 1e-4; allow 1 % plus 20 us of reads.
  EXPECT_NEAR(static_cast<double>(elapsed), static_cast<double>(steady_elapsed),
              steady_elapsed * 0.01 + 20'000)
      << "uses TSC: " << MonotonicClockUsesTsc();
}

TEST(MonotonicClockTest, DurationMatchesNanos) {
  const int64_t a = MonotonicNanos();
  const absl::Duration d = MonotonicNow();
  const int64_t b = MonotonicNanos();
  EXPECT_GE(absl::ToInt64Nanoseconds(d), a);
  EXPECT_LE(absl::ToInt64Nanoseconds(d), b);
}

}  // namespace
}  // namespace bevrpc::internal
