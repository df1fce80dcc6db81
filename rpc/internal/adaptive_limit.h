// AdaptiveLimit: the server-wide limit on unary calls in flight that
// ServerOptions::adaptive_concurrency turns on (rpc/server_options.h,
// docs/resilience.md "Adaptive concurrency limit"). It admits like
// CallLimit (a compare-and-swap against the current limit) and, from the
// calls that end, recomputes the limit once per window by Little's law:
//
//   limit = peak_qps x no_load_latency x (1 + alpha), within [min, max]
//
//   AdaptiveLimit limit(options, AdaptiveLimit::NowUs(), seed);
//   if (!limit.TryAcquire()) ...                     // refuse the call
//   int64_t admitted_us = AdaptiveLimit::NowUs();
//   ...
//   limit.Release(admitted_us, /*answered=*/true);   // when it ends
//
// Cost per call: TryAcquire() is one compare-and-swap; Release() reads the
// clock and adds to two atomic counters (relaxed): the count of ended calls
// and their latency sum share one 64-bit word, so that the window that
// counts a call also holds its latency (a call split between windows would
// bias the no-load latency, a minimum, low for good). A call's latency
// counts as at most kMaxRecordedLatencyUs, and a window holding
// kMaxWindowCalls calls closes early, so the word never overflows. The
// window's numbers are taken and the limit recomputed under a mutex only by
// the one call that ends first after the window closes; others never wait
// for it (a try-lock). Record() takes the time as an argument, so that tests drive
// the arithmetic with their own clock.
//
// Threading: thread-safe. Internal to rpc/.
#ifndef BEVRPC_RPC_INTERNAL_ADAPTIVE_LIMIT_H_
#define BEVRPC_RPC_INTERNAL_ADAPTIVE_LIMIT_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "rpc/server_options.h"
#include "transport/sync.h"

namespace bevrpc::internal {

class AdaptiveLimit {
 public:
  // OK, or INVALID_ARGUMENT naming the adaptive_concurrency field that is
  // out of range.
  static absl::Status Validate(const AdaptiveConcurrency& options);

  // `options` must have passed Validate(); copied. The first window starts
  // at `now_us`; `seed` draws the random re-measure times.
  AdaptiveLimit(const AdaptiveConcurrency& options, int64_t now_us,
                uint64_t seed);

  // A monotonic clock in microseconds, the one Release() uses.
  static int64_t NowUs();

  // Takes a place under the current limit; false (nothing held) when full.
  bool TryAcquire() {
    int64_t n = in_flight_.load(std::memory_order_relaxed);
    do {
      if (n >= limit_.load(std::memory_order_relaxed)) return false;
    } while (
        !in_flight_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
  }

  // Gives back a place taken at `admitted_us` (NowUs()) and records the
  // call: `answered` when it ended with its handler's answer (counted in
  // throughput), false when it was cancelled, timed out or lost its
  // connection (its latency still counts: it held the place that long).
  void Release(int64_t admitted_us, bool answered) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    const int64_t now = NowUs();
    Record(now, now - admitted_us, answered);
  }

  // Records one ended call at `now_us` and, when the window is over,
  // recomputes the limit. Times must not go backwards by much (a call
  // recorded late lands in the next window).
  void Record(int64_t now_us, int64_t latency_us, bool answered);

  // Bounds of the packed per-window counters (see the top of this file).
  static constexpr int kCountBits = 20;
  static constexpr int64_t kMaxWindowCalls = int64_t{1} << (kCountBits - 1);
  static constexpr int64_t kMaxRecordedLatencyUs =
      (int64_t{1} << (64 - 2 * kCountBits)) - 1;  // About 16.8 s.

  // The current limit and calls held under it.
  int64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  int64_t in_flight() const {
    return in_flight_.load(std::memory_order_relaxed);
  }

  // The estimates behind the limit (0 before the first window), and
  // whether a re-measure of the no-load latency is under way.
  double peak_qps() const;
  int64_t no_load_latency_us() const;
  bool remeasuring() const;

 private:
  // Where the limiter is between re-measures of the no-load latency.
  enum class Phase {
    kNormal,
    kDraining,   // Limit lowered; waiting for the queue to empty.
    kMeasuring,  // This window's latency is the new no-load latency.
  };

  // Ends the window at `now_us` and recomputes.
  void CloseWindow(int64_t now_us) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets the limit to `value`, within [min_limit, max_limit].
  void SetLimit(double value);
  int64_t NextRemeasure(int64_t now_us) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AdaptiveConcurrency options_;
  const int64_t window_us_;

  std::atomic<int64_t> limit_;
  std::atomic<int64_t> in_flight_{0};
  // The current window's counts, taken (zeroed) when it closes.
  // Low kCountBits: calls ended; above: the sum of their latencies (us).
  std::atomic<uint64_t> ended_and_latency_{0};
  std::atomic<int64_t> answered_{0};
  // When the next Record() should look at the window.
  std::atomic<int64_t> next_check_us_;

  mutable Mutex mu_;
  int64_t window_start_us_ ABSL_GUARDED_BY(mu_);
  double peak_qps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t no_load_us_ ABSL_GUARDED_BY(mu_) = 0;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kNormal;
  int64_t next_remeasure_us_ ABSL_GUARDED_BY(mu_);
  uint64_t rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_ADAPTIVE_LIMIT_H_
