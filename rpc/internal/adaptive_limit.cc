#include "rpc/internal/adaptive_limit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace bevrpc::internal {
namespace {

// How far a window below the peak pulls the peak throughput down: it forgets
// an old peak over some tens of windows, not at the first quiet one.
constexpr double kPeakDecay = 0.1;
// The limit while the no-load latency is re-measured, as a share of the
// limit before: low enough that queues drain even when the no-load latency
// was measured with a queue (a server saturated since it started), whose
// every re-measure then finds a lower one.
constexpr double kRemeasureShare = 0.5;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr uint64_t kCountMask =
    (uint64_t{1} << AdaptiveLimit::kCountBits) - 1;

}  // namespace

absl::Status AdaptiveLimit::Validate(const AdaptiveConcurrency& o) {
  auto bad = [](absl::string_view field, auto value, absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("adaptive_concurrency.", field, " ", value, " ", why));
  };
  if (o.window < absl::Milliseconds(1) ||
      o.window == absl::InfiniteDuration()) {
    return bad("window", absl::FormatDuration(o.window),
               "must be finite and at least 1ms");
  }
  if (o.min_calls_per_window < 1) {
    return bad("min_calls_per_window", o.min_calls_per_window,
               "must be at least 1");
  }
  if (!(o.alpha > 0 && o.alpha <= 10)) {
    return bad("alpha", o.alpha, "is not within (0, 10]");
  }
  if (o.min_limit < 1) {
    return bad("min_limit", o.min_limit, "must be at least 1");
  }
  if (o.max_limit != 0 && o.max_limit < o.min_limit) {
    return bad(
        "max_limit", o.max_limit,
        absl::StrCat("is below min_limit ", o.min_limit, " (0 = no ceiling)"));
  }
  if (o.initial_limit < o.min_limit ||
      (o.max_limit != 0 && o.initial_limit > o.max_limit)) {
    return bad("initial_limit", o.initial_limit,
               "is not within [min_limit, max_limit]");
  }
  if (o.remeasure_interval < o.window) {
    return bad("remeasure_interval", absl::FormatDuration(o.remeasure_interval),
               "is shorter than the window (infinite = never)");
  }
  return absl::OkStatus();
}

AdaptiveLimit::AdaptiveLimit(const AdaptiveConcurrency& options, int64_t now_us,
                             uint64_t seed)
    : options_(options),
      window_us_(absl::ToInt64Microseconds(options.window)),
      limit_(options.initial_limit),
      next_check_us_(now_us + window_us_),
      window_start_us_(now_us),
      rng_(seed) {
  MutexLock lock(&mu_);
  next_remeasure_us_ = NextRemeasure(now_us);
}

int64_t AdaptiveLimit::NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void AdaptiveLimit::Record(int64_t now_us, int64_t latency_us, bool answered) {
  const uint64_t latency = static_cast<uint64_t>(
      std::clamp<int64_t>(latency_us, 0, kMaxRecordedLatencyUs));
  const uint64_t before = ended_and_latency_.fetch_add(
      (latency << kCountBits) | 1, std::memory_order_relaxed);
  if (answered) answered_.fetch_add(1, std::memory_order_relaxed);
  const bool full =
      static_cast<int64_t>(before & kCountMask) + 1 >= kMaxWindowCalls;
  if (!full && now_us < next_check_us_.load(std::memory_order_relaxed)) {
    return;
  }
  // One call closes the window; the others go on at once.
  if (!mu_.TryLock()) return;
  const uint64_t held = ended_and_latency_.load(std::memory_order_relaxed);
  if (now_us >= next_check_us_.load(std::memory_order_relaxed) ||
      static_cast<int64_t>(held & kCountMask) >= kMaxWindowCalls) {
    CloseWindow(now_us);
  }
  mu_.Unlock();
}

void AdaptiveLimit::CloseWindow(int64_t now_us) {
  const uint64_t packed =
      ended_and_latency_.exchange(0, std::memory_order_relaxed);
  const int64_t ended = static_cast<int64_t>(packed & kCountMask);
  const int64_t latency_sum = static_cast<int64_t>(packed >> kCountBits);
  const int64_t answered = answered_.exchange(0, std::memory_order_relaxed);
  const int64_t elapsed = now_us - window_start_us_;
  window_start_us_ = now_us;
  next_check_us_.store(now_us + window_us_, std::memory_order_relaxed);
  if (phase_ == Phase::kDraining) {
    // The calls admitted above the lowered limit are gone: from here on
    // latency is the no-load latency. What ended meanwhile is discarded.
    phase_ = Phase::kMeasuring;
    return;
  }
  // Too few calls to average (an idle server): keep the limit.
  if (ended < options_.min_calls_per_window || elapsed <= 0) return;
  const int64_t avg_us = std::max<int64_t>(
      1, std::llround(static_cast<double>(latency_sum) / ended));
  const double qps = static_cast<double>(answered) * 1e6 / elapsed;
  peak_qps_ =
      qps >= peak_qps_ ? qps : peak_qps_ * (1 - kPeakDecay) + qps * kPeakDecay;
  if (phase_ == Phase::kMeasuring || no_load_us_ == 0 || avg_us < no_load_us_) {
    no_load_us_ = avg_us;
  }
  const double no_load_calls = peak_qps_ * no_load_us_ / 1e6;
  if (phase_ == Phase::kMeasuring) {
    phase_ = Phase::kNormal;
    next_remeasure_us_ = NextRemeasure(now_us);
  } else if (now_us >= next_remeasure_us_) {
    // Lower the limit below the estimated capacity and, once the calls
    // admitted above it are likely done (twice their latency), measure.
    SetLimit(static_cast<double>(limit()) * kRemeasureShare);
    phase_ = Phase::kDraining;
    next_check_us_.store(now_us + 2 * avg_us, std::memory_order_relaxed);
    return;
  }
  SetLimit(no_load_calls * (1 + options_.alpha));
}

void AdaptiveLimit::SetLimit(double value) {
  double limit = std::isfinite(value) ? std::ceil(value) : 0;
  limit = std::max<double>(limit, options_.min_limit);
  if (options_.max_limit != 0) {
    limit = std::min<double>(limit, options_.max_limit);
  }
  limit = std::min<double>(limit, std::numeric_limits<int32_t>::max());
  limit_.store(static_cast<int64_t>(limit), std::memory_order_relaxed);
}

int64_t AdaptiveLimit::NextRemeasure(int64_t now_us) {
  if (options_.remeasure_interval == absl::InfiniteDuration()) return kNever;
  // A random time in [interval / 2, interval] (splitmix64).
  const int64_t half =
      absl::ToInt64Microseconds(options_.remeasure_interval) / 2;
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z ^= z >> 31;
  return now_us + half +
         static_cast<int64_t>(z % static_cast<uint64_t>(half + 1));
}

double AdaptiveLimit::peak_qps() const {
  MutexLock lock(&mu_);
  return peak_qps_;
}

int64_t AdaptiveLimit::no_load_latency_us() const {
  MutexLock lock(&mu_);
  return no_load_us_;
}

bool AdaptiveLimit::remeasuring() const {
  MutexLock lock(&mu_);
  return phase_ != Phase::kNormal;
}

}  // namespace bevrpc::internal
