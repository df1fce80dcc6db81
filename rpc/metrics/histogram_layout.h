// Log-linear histogram buckets and point-in-time histogram snapshots.
//
// A BucketLayout splits each power of two between `min_value` and
// `max_value` into `sub_buckets_per_octave` equal parts. Buckets are
// Prometheus-style intervals (lower, upper]: a value equal to a boundary
// counts under that boundary's `le`. Bucket 0 holds everything up to the
// lowest boundary (including negative values), the last bucket everything
// above the highest one (its `le` is +Inf). With the defaults (1 us .. 100 s,
// 8 per octave) there are 218 buckets and any value inside the range lands
// in a bucket at most 12.5% wide relative to its lower edge.
//
//   auto layout = BucketLayout::Create(HistogramOptions{});   // StatusOr
//   int i = (*layout)->IndexOf(0.0042);          // bucket of 4.2 ms
//   double le = (*layout)->UpperBound(i);        // its inclusive upper edge
//
//   HistogramSnapshot now = histogram->Snapshot();
//   HistogramSnapshot last_10s = now.Minus(ten_seconds_ago);
//   double p99 = last_10s.Quantile(0.99);        // NaN when nothing counted
//
// Exported boundaries: a Prometheus scrape does not list all internal
// buckets; it lists the boundaries every `sub_buckets_per_octave /
// exported_buckets_per_octave` internal buckets (by default every power of
// two: 2^-20 s ~ 0.95 us up to 2^7 = 128 s, 28 lines plus +Inf). Exported
// boundaries are always internal boundaries, so every exported cumulative
// count is exact; they are powers of two (and their fractions), not round
// decimals, for that reason.
//
// BucketLayout is immutable and thread-safe. HistogramSnapshot is a value;
// not thread-safe to mutate concurrently.
#ifndef BEVRPC_RPC_METRICS_HISTOGRAM_LAYOUT_H_
#define BEVRPC_RPC_METRICS_HISTOGRAM_LAYOUT_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace bevrpc::metrics {

struct HistogramOptions {
  // Values at or below this count in the lowest bucket; rounded down to a
  // power of two. Must be > 0. Default: 1e-6 (1 us, in seconds).
  double min_value = 1e-6;
  // Values above this count in the +Inf bucket; rounded up to a power of
  // two. Must be > min_value. Default: 100 (seconds).
  double max_value = 100;
  // Internal buckets per power of two: 1, 2, 4, 8, 16 or 32. More means
  // finer quantiles and more memory per series and thread (8 bytes per
  // bucket). Default: 8 (buckets at most 12.5% wide).
  int sub_buckets_per_octave = 8;
  // Boundaries per power of two listed in the Prometheus exposition: a
  // power of two dividing sub_buckets_per_octave. Default: 1 (one `le` per
  // power of two).
  int exported_buckets_per_octave = 1;
};

class BucketLayout {
 public:
  // At most this many buckets (per-thread storage is allocated in blocks of
  // 1024 cells; one cell holds the sum).
  static constexpr int kMaxBuckets = 1023;

  // INVALID_ARGUMENT naming the field when the options are out of range.
  static absl::StatusOr<std::shared_ptr<const BucketLayout>> Create(
      const HistogramOptions& options);

  const HistogramOptions& options() const { return options_; }
  int num_buckets() const { return num_buckets_; }

  // The bucket counting `value`; -1 for NaN (not counted). Lock-free, no
  // allocation.
  int IndexOf(double value) const {
    if (!(value > lowest_)) return value != value ? -1 : 0;
    if (value > highest_) return num_buckets_ - 1;
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    // The double just below `value`: a value exactly on a boundary then
    // lands in the bucket below it, making buckets (lower, upper].
    bits -= 1;
    const int exponent = static_cast<int>(bits >> 52) - 1023;
    const int sub = static_cast<int>((bits >> (52 - sub_bits_)) &
                                     ((1u << sub_bits_) - 1));
    return 1 + ((exponent - min_exponent_) << sub_bits_) + sub;
  }

  // Inclusive upper edge of bucket `i`; +Inf for the last bucket.
  double UpperBound(int i) const { return upper_[i]; }
  // Exclusive lower edge of bucket `i`; 0 for bucket 0 (negative values
  // are not expected in latency or size histograms).
  double LowerBound(int i) const { return i == 0 ? 0 : upper_[i - 1]; }
  // Buckets whose upper edge the exposition lists, ascending; the last one
  // is always the +Inf bucket.
  const std::vector<int>& exported_buckets() const { return exported_; }

 private:
  BucketLayout() = default;

  HistogramOptions options_;
  int sub_bits_ = 0;
  int min_exponent_ = 0;
  double lowest_ = 0;
  double highest_ = 0;
  int num_buckets_ = 0;
  std::vector<double> upper_;
  std::vector<int> exported_;
};

// Counts of one histogram at one moment (or the difference of two).
struct HistogramSnapshot {
  std::shared_ptr<const BucketLayout> layout;
  // Per internal bucket, non-cumulative; layout->num_buckets() entries.
  std::vector<uint64_t> counts;
  uint64_t count = 0;
  double sum = 0;

  // What was observed between `earlier` and this snapshot of the same
  // histogram: bucket counts, count and sum subtracted (a count that went
  // down, which only a reset can cause, gives 0).
  HistogramSnapshot Minus(const HistogramSnapshot& earlier) const;
  // Estimated q-quantile (0 <= q <= 1), interpolated linearly inside the
  // bucket holding it, so off by at most that bucket's width; the +Inf
  // bucket reports its lower edge. NaN when count is 0.
  double Quantile(double q) const;
  // sum / count; NaN when count is 0.
  double Mean() const;
  // Observations <= UpperBound(i): the cumulative count Prometheus lists.
  uint64_t CumulativeCount(int i) const;
};

}  // namespace bevrpc::metrics

#endif  // BEVRPC_RPC_METRICS_HISTOGRAM_LAYOUT_H_
