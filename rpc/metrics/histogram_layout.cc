#include "rpc/metrics/histogram_layout.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace bevrpc::metrics {
namespace {

int Log2OfPowerOfTwo(int n) {
  if (n <= 0 || (n & (n - 1)) != 0) return -1;
  int bits = 0;
  while ((1 << bits) < n) ++bits;
  return bits;
}

absl::Status Validate(const HistogramOptions& o) {
  if (!(o.min_value > 0) || !std::isfinite(o.min_value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram min_value ", o.min_value, " must be a finite value > 0"));
  }
  if (!(o.max_value > o.min_value) || !std::isfinite(o.max_value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram max_value ", o.max_value,
                     " must be finite and > min_value ", o.min_value));
  }
  const int sub_bits = Log2OfPowerOfTwo(o.sub_buckets_per_octave);
  if (sub_bits < 0 || sub_bits > 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram sub_buckets_per_octave ",
                     o.sub_buckets_per_octave, " must be 1, 2, 4, 8, 16 or 32"));
  }
  const int export_bits = Log2OfPowerOfTwo(o.exported_buckets_per_octave);
  if (export_bits < 0 || export_bits > sub_bits) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram exported_buckets_per_octave ",
        o.exported_buckets_per_octave,
        " must be a power of two <= sub_buckets_per_octave ",
        o.sub_buckets_per_octave));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const BucketLayout>> BucketLayout::Create(
    const HistogramOptions& options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  const int min_exp = static_cast<int>(std::floor(std::log2(options.min_value)));
  const int max_exp = static_cast<int>(std::ceil(std::log2(options.max_value)));
  if (min_exp < -1022 || max_exp > 1023) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram range ", options.min_value, "..", options.max_value,
        " is outside normal doubles"));
  }
  std::shared_ptr<BucketLayout> layout(new BucketLayout());
  layout->options_ = options;
  layout->sub_bits_ = Log2OfPowerOfTwo(options.sub_buckets_per_octave);
  layout->min_exponent_ = min_exp;
  layout->lowest_ = std::ldexp(1.0, min_exp);
  layout->highest_ = std::ldexp(1.0, max_exp);
  const int per_octave = options.sub_buckets_per_octave;
  const int regular = (max_exp - min_exp) * per_octave;
  layout->num_buckets_ = regular + 2;
  if (layout->num_buckets_ > kMaxBuckets) {
    return absl::InvalidArgumentError(absl::StrCat(
        "histogram range ", options.min_value, "..", options.max_value,
        " with sub_buckets_per_octave ", per_octave, " needs ",
        layout->num_buckets_, " buckets, more than ", kMaxBuckets));
  }
  const int export_step = per_octave / options.exported_buckets_per_octave;
  layout->upper_.push_back(layout->lowest_);
  layout->exported_.push_back(0);
  for (int k = 0; k < regular; ++k) {
    const int exponent = min_exp + k / per_octave;
    const int sub = k % per_octave + 1;
    layout->upper_.push_back(
        std::ldexp(1.0 + static_cast<double>(sub) / per_octave, exponent));
    if ((k + 1) % export_step == 0) layout->exported_.push_back(k + 1);
  }
  layout->upper_.push_back(std::numeric_limits<double>::infinity());
  layout->exported_.push_back(regular + 1);
  return std::shared_ptr<const BucketLayout>(std::move(layout));
}

HistogramSnapshot HistogramSnapshot::Minus(
    const HistogramSnapshot& earlier) const {
  HistogramSnapshot out;
  out.layout = layout;
  out.counts.resize(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    const uint64_t before = i < earlier.counts.size() ? earlier.counts[i] : 0;
    out.counts[i] = counts[i] > before ? counts[i] - before : 0;
    out.count += out.counts[i];
  }
  out.sum = out.count == 0 ? 0 : sum - earlier.sum;
  return out;
}

double HistogramSnapshot::Quantile(double q) const {
  if (count == 0 || layout == nullptr) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  q = std::min(1.0, std::max(0.0, q));
  // The rank-th observation (1-based), at least the first.
  const double rank = std::max(1.0, q * static_cast<double>(count));
  uint64_t before = 0;
  const int last = static_cast<int>(counts.size()) - 1;
  for (int i = 0; i <= last; ++i) {
    const uint64_t here = counts[i];
    if (here == 0 || static_cast<double>(before + here) < rank) {
      before += here;
      continue;
    }
    if (i == last) return layout->LowerBound(i);
    const double lower = layout->LowerBound(i);
    const double upper = layout->UpperBound(i);
    const double fraction =
        (rank - static_cast<double>(before)) / static_cast<double>(here);
    return lower + (upper - lower) * fraction;
  }
  return layout->LowerBound(last);
}

double HistogramSnapshot::Mean() const {
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  return sum / static_cast<double>(count);
}

uint64_t HistogramSnapshot::CumulativeCount(int i) const {
  uint64_t total = 0;
  for (int j = 0; j <= i && j < static_cast<int>(counts.size()); ++j) {
    total += counts[j];
  }
  return total;
}

}  // namespace bevrpc::metrics
