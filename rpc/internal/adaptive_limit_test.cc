#include "rpc/internal/adaptive_limit.h"

#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace bevrpc::internal {
namespace {

constexpr int64_t kWindowUs = 100'000;  // 100 ms

AdaptiveConcurrency Options() {
  AdaptiveConcurrency o;
  o.enabled = true;
  o.window = absl::Microseconds(kWindowUs);
  o.min_calls_per_window = 10;
  o.alpha = 0.5;
  o.initial_limit = 10;
  o.min_limit = 2;
  o.remeasure_interval = absl::InfiniteDuration();
  return o;
}

// Drives a limiter with an injected clock: each Window() records `calls`
// calls of `latency_us` spread evenly over one window, the last one exactly
// at its end (which closes it).
class Driver {
 public:
  explicit Driver(const AdaptiveConcurrency& o, uint64_t seed = 1)
      : limit(o, /*now_us=*/0, seed),
        window_us_(absl::ToInt64Microseconds(o.window)) {}

  // `qps` answered calls per second (all answered unless `answered` says
  // how many of them were).
  void Window(double qps, int64_t latency_us, int answered = -1) {
    const int calls = static_cast<int>(std::lround(qps * window_us_ / 1e6));
    if (answered < 0) answered = calls;
    for (int i = 0; i < calls; ++i) {
      limit.Record(now_ + window_us_ * (i + 1) / calls, latency_us,
                   i < answered);
    }
    now_ += window_us_;
  }
  void Windows(int n, double qps, int64_t latency_us) {
    for (int i = 0; i < n; ++i) Window(qps, latency_us);
  }
  int64_t now() const { return now_; }

  AdaptiveLimit limit;

 private:
  const int64_t window_us_;
  int64_t now_ = 0;
};

// ceil(qps x latency x (1 + alpha)).
int64_t Expected(double qps, int64_t latency_us, double alpha) {
  return static_cast<int64_t>(std::ceil(qps * latency_us / 1e6 * (1 + alpha)));
}

TEST(AdaptiveLimitTest, StartsAtTheInitialLimit) {
  Driver d(Options());
  EXPECT_EQ(d.limit.limit(), 10);
  EXPECT_EQ(d.limit.peak_qps(), 0);
  EXPECT_EQ(d.limit.no_load_latency_us(), 0);
}

TEST(AdaptiveLimitTest, SteadyInputGivesLittlesLawWithHeadroom) {
  Driver d(Options());
  // 2000 qps at 20 ms: 40 calls busy; with alpha 0.5, 60.
  d.Windows(5, 2000, 20'000);
  EXPECT_EQ(d.limit.no_load_latency_us(), 20'000);
  EXPECT_DOUBLE_EQ(d.limit.peak_qps(), 2000);
  EXPECT_EQ(d.limit.limit(), Expected(2000, 20'000, 0.5));
  EXPECT_EQ(d.limit.limit(), 60);
}

TEST(AdaptiveLimitTest, AWindowWithTooFewCallsChangesNothing) {
  Driver d(Options());
  d.Window(50, 1000);  // 5 calls < min_calls_per_window 10.
  EXPECT_EQ(d.limit.limit(), 10);
  EXPECT_EQ(d.limit.no_load_latency_us(), 0);
}

TEST(AdaptiveLimitTest, RisesWhileLatencyStaysLowAndThroughputGrows) {
  AdaptiveConcurrency o = Options();
  o.alpha = 0.25;
  Driver d(o);
  // A server that could do far more: every window the calls fill the limit
  // at the same 10 ms, so throughput = limit / 10 ms, and the limit grows
  // by alpha each window.
  int64_t previous = d.limit.limit();
  for (int i = 0; i < 8; ++i) {
    const double qps = previous * 100.0;  // previous / 10 ms
    d.Window(qps, 10'000);
    EXPECT_NEAR(d.limit.peak_qps(), qps, 1e-6) << "window " << i;
    EXPECT_EQ(d.limit.limit(), Expected(d.limit.peak_qps(), 10'000, 0.25))
        << "window " << i;
    EXPECT_GT(d.limit.limit(), previous) << "window " << i;
    previous = d.limit.limit();
  }
  EXPECT_EQ(d.limit.no_load_latency_us(), 10'000);
  EXPECT_GE(previous, 50);  // 10 x 1.25^8 = 60, with rounding up.
}

TEST(AdaptiveLimitTest, FallsWhenLatencyRises) {
  Driver d(Options());
  d.Windows(3, 1000, 10'000);
  EXPECT_EQ(d.limit.limit(), Expected(1000, 10'000, 0.5));  // 15
  // The same calls in flight now take twice as long: half the throughput.
  // The no-load latency is still 10 ms, so the limit follows the peak
  // throughput down as it decays toward 500 qps.
  int64_t previous = d.limit.limit();
  for (int i = 0; i < 40; ++i) {
    d.Window(500, 20'000);
    EXPECT_LE(d.limit.limit(), previous) << "window " << i;
    previous = d.limit.limit();
  }
  EXPECT_EQ(d.limit.no_load_latency_us(), 10'000);
  EXPECT_LT(d.limit.peak_qps(), 510);
  EXPECT_EQ(d.limit.limit(), Expected(d.limit.peak_qps(), 10'000, 0.5));
  EXPECT_LE(d.limit.limit(), 8);
}

TEST(AdaptiveLimitTest, UnansweredCallsCountInLatencyNotThroughput) {
  Driver d(Options());
  // 1000 calls/s of which half answered: 500 qps; their 10 ms latency.
  d.Window(1000, 10'000, /*answered=*/50);
  EXPECT_DOUBLE_EQ(d.limit.peak_qps(), 500);
  EXPECT_EQ(d.limit.limit(), Expected(500, 10'000, 0.5));
}

TEST(AdaptiveLimitTest, NeverBelowTheFloor) {
  AdaptiveConcurrency o = Options();
  o.min_limit = 3;
  o.initial_limit = 3;
  Driver d(o);
  d.Windows(3, 200, 1000);  // 0.2 calls busy.
  EXPECT_EQ(d.limit.limit(), 3);
}

TEST(AdaptiveLimitTest, NeverAboveTheCeiling) {
  AdaptiveConcurrency o = Options();
  o.max_limit = 25;
  Driver d(o);
  d.Windows(3, 10'000, 50'000);  // 500 calls busy.
  EXPECT_EQ(d.limit.limit(), 25);
}

TEST(AdaptiveLimitTest, RemeasuresTheNoLoadLatency) {
  AdaptiveConcurrency o = Options();
  o.remeasure_interval = absl::Seconds(2);  // Due within 1 s to 2 s.
  Driver d(o);
  d.Windows(3, 1000, 10'000);
  const int64_t steady = d.limit.limit();
  EXPECT_EQ(steady, Expected(1000, 10'000, 0.5));  // 15
  // The handlers really became slower: 20 ms with nothing queued. Without
  // a re-measure the 10 ms minimum would hold forever.
  while (d.now() < 2'100'000 && !d.limit.remeasuring()) {
    d.Window(1000, 20'000);
  }
  ASSERT_TRUE(d.limit.remeasuring()) << "no re-measure within the interval";
  EXPECT_GE(d.now(), 1'000'000);
  // The limit was halved, below the estimated no-load concurrency (10), to
  // let the queue drain.
  EXPECT_EQ(d.limit.limit(), 8);
  // Draining (2 x 20 ms, within the next window), then one measuring window
  // at 20 ms.
  d.Windows(2, 450, 20'000);
  EXPECT_FALSE(d.limit.remeasuring());
  EXPECT_EQ(d.limit.no_load_latency_us(), 20'000);
  EXPECT_EQ(d.limit.limit(), Expected(d.limit.peak_qps(), 20'000, 0.5));
  EXPECT_GT(d.limit.limit(), steady);
}

TEST(AdaptiveLimitTest, RemeasureTimesDifferBySeed) {
  AdaptiveConcurrency o = Options();
  o.remeasure_interval = absl::Seconds(10);
  int64_t first[2];
  for (uint64_t seed : {1u, 2u}) {
    Driver d(o, seed);
    while (!d.limit.remeasuring()) d.Window(1000, 10'000);
    first[seed - 1] = d.now();
    EXPECT_GE(d.now(), 5'000'000);
    EXPECT_LE(d.now(), 10'000'000 + kWindowUs);
  }
  EXPECT_NE(first[0], first[1]);
}

TEST(AdaptiveLimitTest, AcquireHonoursTheCurrentLimit) {
  AdaptiveConcurrency o = Options();
  o.initial_limit = 3;
  AdaptiveLimit limit(o, AdaptiveLimit::NowUs(), 1);
  EXPECT_TRUE(limit.TryAcquire());
  EXPECT_TRUE(limit.TryAcquire());
  EXPECT_TRUE(limit.TryAcquire());
  EXPECT_FALSE(limit.TryAcquire());
  EXPECT_EQ(limit.in_flight(), 3);
  limit.Release(AdaptiveLimit::NowUs(), /*answered=*/true);
  EXPECT_EQ(limit.in_flight(), 2);
  EXPECT_TRUE(limit.TryAcquire());
}

TEST(AdaptiveLimitTest, ConcurrentRecordsCloseEachWindowOnce) {
  AdaptiveConcurrency o = Options();
  o.min_calls_per_window = 1;
  AdaptiveLimit limit(o, 0, 1);
  // Four threads record 1000 calls each at 1 ms over 10 windows: every
  // call is counted in some window with its own latency (a window never
  // holds a call without its latency: the no-load latency is exact) and
  // the limit stays finite.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&limit] {
      for (int i = 1; i <= 1000; ++i) limit.Record(i * 1000, 1000, true);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(limit.no_load_latency_us(), 1000);
  EXPECT_GE(limit.limit(), o.min_limit);
  EXPECT_LE(limit.limit(), 100);
}

TEST(AdaptiveLimitTest, AWindowThatFillsItsCounterClosesEarly) {
  AdaptiveConcurrency o = Options();
  o.min_calls_per_window = 1;
  AdaptiveLimit limit(o, 0, 1);
  // All at 1 ms, long before the 100 ms window ends: the last one fills
  // the count and closes the window.
  for (int64_t i = 0; i < AdaptiveLimit::kMaxWindowCalls - 1; ++i) {
    limit.Record(1000, 10, true);
  }
  EXPECT_EQ(limit.no_load_latency_us(), 0);
  limit.Record(1000, 10, true);
  EXPECT_EQ(limit.no_load_latency_us(), 10);
  EXPECT_GT(limit.peak_qps(), 0);
}

TEST(AdaptiveLimitTest, AVeryLongCallCountsAsTheLongestRecordedLatency) {
  AdaptiveConcurrency o = Options();
  o.min_calls_per_window = 1;
  AdaptiveLimit limit(o, 0, 1);
  limit.Record(kWindowUs, int64_t{3600} * 1'000'000, true);  // An hour.
  EXPECT_EQ(limit.no_load_latency_us(), AdaptiveLimit::kMaxRecordedLatencyUs);
  EXPECT_GE(limit.limit(), o.min_limit);
}

TEST(AdaptiveLimitTest, ValidateNamesTheField) {
  AdaptiveConcurrency o = Options();
  EXPECT_TRUE(AdaptiveLimit::Validate(o).ok());
  o.alpha = 0;
  EXPECT_NE(AdaptiveLimit::Validate(o).message().find(
                "adaptive_concurrency.alpha 0 is not within (0, 10]"),
            std::string::npos)
      << AdaptiveLimit::Validate(o);
  o = Options();
  o.min_limit = 0;
  EXPECT_NE(AdaptiveLimit::Validate(o).message().find(
                "adaptive_concurrency.min_limit"),
            std::string::npos);
  o = Options();
  o.max_limit = 5;  // Below initial_limit 10.
  EXPECT_NE(AdaptiveLimit::Validate(o).message().find(
                "adaptive_concurrency.initial_limit 10"),
            std::string::npos);
  o = Options();
  o.window = absl::ZeroDuration();
  EXPECT_EQ(AdaptiveLimit::Validate(o).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bevrpc::internal
