#include "tools/cli/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bevrpc::cli {
namespace {

constexpr int kSub = 1 << Histogram::kSubBucketBits;
constexpr int kNumBuckets =
    (Histogram::kMaxExponent - Histogram::kSubBucketBits + 2) * kSub;
// Rows of RenderAscii(): at most this many, each at least 2% wide so that
// neighbouring labels (three significant digits) stay distinct.
constexpr int kMaxRows = 20;
constexpr double kMinRowRatio = 1.02;

}  // namespace

Histogram::Histogram() : buckets_(kNumBuckets, 0) {}

int Histogram::BucketOf(int64_t value) {
  if (value < kSub) return static_cast<int>(value);
  int exponent = 63 - __builtin_clzll(static_cast<uint64_t>(value));
  if (exponent > kMaxExponent) return kNumBuckets - 1;
  int shift = exponent - kSubBucketBits;
  return (shift + 1) * kSub + static_cast<int>((value >> shift) - kSub);
}

int64_t Histogram::BucketLower(int index) {
  if (index < kSub) return index;
  int group = index / kSub;
  return static_cast<int64_t>(kSub + index % kSub) << (group - 1);
}

int64_t Histogram::BucketWidth(int index) {
  return index < kSub ? 1 : int64_t{1} << (index / kSub - 1);
}

void Histogram::Record(int64_t value_ns) {
  int64_t v = std::max<int64_t>(value_ns, 0);
  ++buckets_[BucketOf(v)];
  if (count_ == 0 || v < min_) min_ = v;
  if (v > max_) max_ = v;
  ++count_;
  sum_ += static_cast<double>(v);
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (int i = 0; i < kNumBuckets; ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void Histogram::Clear() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

double Histogram::Mean() const {
  return count_ == 0 ? 0 : sum_ / static_cast<double>(count_);
}

double Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // Nearest rank, 1-based. Snap to an integer first so that 99.9% of 1000
  // is rank 999, not 1000 through rounding error.
  double exact = p / 100.0 * static_cast<double>(count_);
  double rounded = std::round(exact);
  int64_t rank = static_cast<int64_t>(
      std::abs(exact - rounded) < 1e-6 ? rounded : std::ceil(exact));
  rank = std::clamp<int64_t>(rank, 1, count_);
  // The extremes are known exactly.
  if (rank == 1) return static_cast<double>(min_);
  if (rank == count_) return static_cast<double>(max_);
  int64_t seen = 0;
  for (int i = 0; i < kNumBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      // The last bucket also holds every clamped value: no midpoint.
      if (i == kNumBuckets - 1) return static_cast<double>(max_);
      double mid = static_cast<double>(BucketLower(i)) +
                   static_cast<double>(BucketWidth(i) - 1) / 2.0;
      return std::clamp(mid, static_cast<double>(min_),
                        static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

std::string Histogram::FormatNanos(double ns) {
  static constexpr const char* kUnits[] = {"ns", "us", "ms", "s"};
  double v = std::max(ns, 0.0);
  int unit = 0;
  while (unit < 3 && v >= 999.5) {
    v /= 1000;
    ++unit;
  }
  if (unit == 0) return absl::StrFormat("%.0f%s", v, kUnits[unit]);
  if (v < 9.995) return absl::StrFormat("%.2f%s", v, kUnits[unit]);
  if (v < 99.95) return absl::StrFormat("%.1f%s", v, kUnits[unit]);
  return absl::StrFormat("%.0f%s", v, kUnits[unit]);
}

std::string Histogram::RenderAscii(int width) const {
  if (count_ == 0) return "(no samples)\n";
  // Log-spaced rows over [lo, hi_edge): value v falls in row
  // floor(K * ln(v / lo) / ln(hi_edge / lo)).
  const double lo = std::max<double>(static_cast<double>(min_), 1.0);
  const double hi_edge = std::max<double>(static_cast<double>(max_), lo) + 1;
  const double log_span = std::log(hi_edge / lo);
  int rows = static_cast<int>(std::ceil(log_span / std::log(kMinRowRatio)));
  rows = std::clamp(rows, 1, kMaxRows);
  std::vector<int64_t> row_counts(rows, 0);
  for (int i = 0; i < kNumBuckets; ++i) {
    if (buckets_[i] == 0) continue;
    double mid = static_cast<double>(BucketLower(i)) +
                 static_cast<double>(BucketWidth(i) - 1) / 2.0;
    mid = std::clamp(mid, lo, hi_edge - 1);
    int row = static_cast<int>(rows * std::log(mid / lo) / log_span);
    row_counts[std::clamp(row, 0, rows - 1)] += buckets_[i];
  }
  const int64_t tallest =
      *std::max_element(row_counts.begin(), row_counts.end());
  // Fixed columns: "%8s - %-8s |" (21), "| %9d %5.1f%%" (19).
  const int bar_width = std::max(10, width - 40);
  std::string out;
  for (int r = 0; r < rows; ++r) {
    double lower = r == 0 ? static_cast<double>(min_)
                          : lo * std::exp(log_span * r / rows);
    double upper = r == rows - 1 ? static_cast<double>(max_)
                                 : lo * std::exp(log_span * (r + 1) / rows);
    int bar = static_cast<int>(std::lround(
        static_cast<double>(row_counts[r]) * bar_width /
        static_cast<double>(tallest)));
    if (bar == 0 && row_counts[r] > 0) bar = 1;  // Visible, however rare.
    absl::StrAppend(
        &out,
        absl::StrFormat("%8s - %-8s |%s%s| %9d %5.1f%%\n", FormatNanos(lower),
                        FormatNanos(upper), std::string(bar, '#'),
                        std::string(bar_width - bar, ' '), row_counts[r],
                        100.0 * static_cast<double>(row_counts[r]) /
                            static_cast<double>(count_)));
  }
  return out;
}

}  // namespace bevrpc::cli
