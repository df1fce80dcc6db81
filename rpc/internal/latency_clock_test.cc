#include "rpc/internal/latency_clock.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace bevrpc::internal {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TEST(LatencyClockTest, SaysWhichCounterItReads) {
  std::printf("LatencyClock: %s, %.6f ns per tick\n",
              LatencyClock::UsesTsc() ? "time-stamp counter" : "steady_clock",
              LatencyClock::NanosPerTick());
  EXPECT_GT(LatencyClock::NanosPerTick(), 0);
  if (!LatencyClock::UsesTsc()) {
    EXPECT_EQ(LatencyClock::NanosPerTick(), 1);
  }
}

TEST(LatencyClockTest, NegativeAndZeroDifferencesAreZero) {
  EXPECT_EQ(LatencyClock::ToNanos(0), 0);
  EXPECT_EQ(LatencyClock::ToNanos(-1), 0);
  EXPECT_EQ(LatencyClock::ToNanos(INT64_MIN), 0);
}

// A span measured with both clocks agrees to within 0.5 % (plus the reads'
// own cost). Of three tries the closest counts: a preemption between the
// two clocks' reads can only widen one try.
TEST(LatencyClockTest, AgreesWithSteadyClock) {
  double best_error = 1;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int64_t steady0 = SteadyNanos();
    const int64_t ticks0 = LatencyClock::Now();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const int64_t ticks1 = LatencyClock::Now();
    const int64_t steady1 = SteadyNanos();
    const double steady = static_cast<double>(steady1 - steady0);
    const double ours =
        static_cast<double>(LatencyClock::ToNanos(ticks1 - ticks0));
    best_error = std::min(best_error, std::abs(ours - steady) / steady);
    if (best_error < 0.001) break;
  }
  EXPECT_LT(best_error, 0.005);
}

// A latency may start on one thread and end on another (the caller's and
// the loop's). Reads ordered by a handoff never go back by more than the
// counters' disagreement, which is far below a microsecond where the kernel
// keeps time with them.
TEST(LatencyClockTest, ReadsOrderedAcrossThreadsDoNotGoBack) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t handed = 0;
  int round = 0;  // Odd: the other thread's turn.
  constexpr int kRounds = 20000;
  int64_t worst = 0;  // Most negative difference seen.
  std::thread other([&] {
    for (int i = 0; i < kRounds; ++i) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return round % 2 == 1; });
      worst = std::min(worst, LatencyClock::Now() - handed);
      handed = LatencyClock::Now();
      ++round;
      cv.notify_all();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return round % 2 == 0; });
    if (i > 0) worst = std::min(worst, LatencyClock::Now() - handed);
    handed = LatencyClock::Now();
    ++round;
    cv.notify_all();
  }
  other.join();
  const double worst_ns = static_cast<double>(worst) * LatencyClock::NanosPerTick();
  EXPECT_GT(worst_ns, -10000.0) << "the clock went back " << -worst_ns
                                << " ns between threads";
}

}  // namespace
}  // namespace bevrpc::internal
