// Histogram: a log-linear histogram of latencies in nanoseconds with a
// bounded relative error, for load generators and their reports.
//
//   Histogram h;
//   h.Record(absl::ToInt64Nanoseconds(elapsed));
//   total.Merge(h);
//   double p99_ns = total.Percentile(99);
//   std::cout << total.RenderAscii(72);
//
// Values below 128 ns are kept exactly. Above, each power of two
// [2^e, 2^(e+1)) is split into 128 equal sub-buckets, so a bucket is at most
// 1/128 (0.78%) of its lower bound wide; Percentile() answers with the bucket
// midpoint, within 0.4% of every value in the bucket. Values of 2^44 ns
// (~4.9 hours) and above share the last bucket. Min() and Max() are exact.
// Memory: ~38 KiB per histogram, fixed.
//
// Thread-compatible: one thread records; merge after the recorders are done.
#ifndef BEVRPC_TOOLS_CLI_HISTOGRAM_H_
#define BEVRPC_TOOLS_CLI_HISTOGRAM_H_

#include <cstdint>
#include <string>
#include <vector>

namespace bevrpc::cli {

class Histogram {
 public:
  // Sub-buckets per power of two: 2^kSubBucketBits.
  static constexpr int kSubBucketBits = 7;
  // Values >= 2^(kMaxExponent + 1) are clamped into the last bucket.
  static constexpr int kMaxExponent = 43;

  Histogram();

  // Adds one value; negative values count as 0.
  void Record(int64_t value_ns);
  // Adds every value recorded in `other`.
  void Merge(const Histogram& other);
  void Clear();

  int64_t Count() const { return count_; }
  // Exact extremes; 0 when empty.
  int64_t Min() const { return count_ == 0 ? 0 : min_; }
  int64_t Max() const { return max_; }
  double Mean() const;

  // The value at percentile `p` in [0, 100] (nearest rank: the smallest
  // recorded value with at least p% of the values at or below it), as the
  // midpoint of its bucket clamped to [Min(), Max()]; the first and last
  // ranks answer Min() and Max() exactly. 0 when empty.
  double Percentile(double p) const;

  // A terminal picture: one row per latency range (log-spaced, at most 20
  // rows between Min() and Max()), each "lower - upper |#### | count pct%",
  // about `width` characters wide. "(no samples)\n" when empty.
  std::string RenderAscii(int width = 72) const;

  // "850ns", "12.3us", "1.25ms", "2.50s": three significant digits.
  static std::string FormatNanos(double ns);

 private:
  static int BucketOf(int64_t value);
  static int64_t BucketLower(int index);
  static int64_t BucketWidth(int index);

  std::vector<int64_t> buckets_;
  int64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace bevrpc::cli

#endif  // BEVRPC_TOOLS_CLI_HISTOGRAM_H_
