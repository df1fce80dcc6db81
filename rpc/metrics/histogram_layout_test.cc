#include "rpc/metrics/histogram_layout.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bevrpc::metrics {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const BucketLayout> MustCreate(const HistogramOptions& o) {
  absl::StatusOr<std::shared_ptr<const BucketLayout>> layout =
      BucketLayout::Create(o);
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *layout;
}

TEST(BucketLayoutTest, DefaultCoversMicrosecondsToHundredSeconds) {
  auto layout = MustCreate(HistogramOptions{});
  // 2^-20 .. 2^7: 27 octaves of 8, plus underflow and +Inf.
  EXPECT_EQ(layout->num_buckets(), 27 * 8 + 2);
  EXPECT_EQ(layout->UpperBound(0), std::ldexp(1.0, -20));
  EXPECT_EQ(layout->UpperBound(1), std::ldexp(1.125, -20));
  EXPECT_EQ(layout->UpperBound(layout->num_buckets() - 2), 128.0);
  EXPECT_TRUE(std::isinf(layout->UpperBound(layout->num_buckets() - 1)));
  EXPECT_LE(layout->UpperBound(0), 1e-6);
  EXPECT_GE(layout->UpperBound(layout->num_buckets() - 2), 100.0);
}

TEST(BucketLayoutTest, ValueOnABoundaryCountsUnderThatBoundary) {
  auto layout = MustCreate(HistogramOptions{});
  const int last = layout->num_buckets() - 1;
  for (int i = 0; i < last; ++i) {
    const double edge = layout->UpperBound(i);
    EXPECT_EQ(layout->IndexOf(edge), i) << "edge " << edge;
    EXPECT_EQ(layout->IndexOf(std::nextafter(edge, 1e300)), i + 1)
        << "just above " << edge;
    if (i > 0) {
      EXPECT_EQ(layout->IndexOf(std::nextafter(edge, 0.0)), i)
          << "just below " << edge;
    }
  }
}

TEST(BucketLayoutTest, OutOfRangeValues) {
  auto layout = MustCreate(HistogramOptions{});
  const int last = layout->num_buckets() - 1;
  EXPECT_EQ(layout->IndexOf(0), 0);
  EXPECT_EQ(layout->IndexOf(-5), 0);
  EXPECT_EQ(layout->IndexOf(1e-12), 0);
  EXPECT_EQ(layout->IndexOf(1e9), last);
  EXPECT_EQ(layout->IndexOf(std::numeric_limits<double>::infinity()), last);
  EXPECT_EQ(layout->IndexOf(std::numeric_limits<double>::quiet_NaN()), -1);
}

TEST(BucketLayoutTest, EveryValueLiesWithinItsBucket) {
  auto layout = MustCreate(HistogramOptions{});
  for (double v = 1.1e-6; v < 100; v *= 1.0137) {
    const int i = layout->IndexOf(v);
    EXPECT_GT(v, layout->LowerBound(i));
    EXPECT_LE(v, layout->UpperBound(i));
    // Log-linear: at most 1/8 of the lower edge wide.
    EXPECT_LE(layout->UpperBound(i) - layout->LowerBound(i),
              layout->LowerBound(i) / 8 * (1 + 1e-12));
  }
}

TEST(BucketLayoutTest, ExportsPowersOfTwoByDefault) {
  auto layout = MustCreate(HistogramOptions{});
  const std::vector<int>& exported = layout->exported_buckets();
  ASSERT_EQ(exported.size(), 29u);  // 2^-20 .. 2^7, +Inf
  for (size_t k = 0; k + 1 < exported.size(); ++k) {
    EXPECT_EQ(layout->UpperBound(exported[k]),
              std::ldexp(1.0, -20 + static_cast<int>(k)));
  }
  EXPECT_EQ(exported.back(), layout->num_buckets() - 1);
}

TEST(BucketLayoutTest, FinerExport) {
  HistogramOptions o;
  o.min_value = 1;
  o.max_value = 4;
  o.sub_buckets_per_octave = 4;
  o.exported_buckets_per_octave = 2;
  auto layout = MustCreate(o);
  std::vector<double> edges;
  for (int i : layout->exported_buckets()) {
    edges.push_back(layout->UpperBound(i));
  }
  EXPECT_THAT(edges, ::testing::ElementsAre(
                         1, 1.5, 2, 3, 4,
                         std::numeric_limits<double>::infinity()));
}

TEST(BucketLayoutTest, RejectsBadOptions) {
  auto error = [](HistogramOptions o) {
    return std::string(BucketLayout::Create(o).status().message());
  };
  HistogramOptions o;
  o.min_value = 0;
  EXPECT_THAT(error(o), HasSubstr("min_value 0"));
  o = HistogramOptions{};
  o.max_value = 1e-7;
  EXPECT_THAT(error(o), HasSubstr("max_value"));
  o = HistogramOptions{};
  o.sub_buckets_per_octave = 3;
  EXPECT_THAT(error(o), HasSubstr("sub_buckets_per_octave 3"));
  o = HistogramOptions{};
  o.exported_buckets_per_octave = 16;
  EXPECT_THAT(error(o), HasSubstr("exported_buckets_per_octave 16"));
  o = HistogramOptions{};
  o.min_value = 1e-30;
  o.max_value = 1e30;
  o.sub_buckets_per_octave = 32;
  EXPECT_THAT(error(o), HasSubstr("more than 1023"));
}

HistogramSnapshot SnapshotOf(std::shared_ptr<const BucketLayout> layout,
                             const std::vector<double>& values) {
  HistogramSnapshot s;
  s.layout = layout;
  s.counts.assign(layout->num_buckets(), 0);
  for (double v : values) {
    ++s.counts[layout->IndexOf(v)];
    ++s.count;
    s.sum += v;
  }
  return s;
}

TEST(HistogramSnapshotTest, QuantilesWithinABucketWidth) {
  auto layout = MustCreate(HistogramOptions{});
  std::vector<double> values;
  for (int i = 1; i <= 1000; ++i) values.push_back(i * 1e-5);  // 10us..10ms
  HistogramSnapshot s = SnapshotOf(layout, values);
  for (double q : {0.01, 0.5, 0.9, 0.99, 1.0}) {
    const double exact = values[static_cast<size_t>(q * 1000) - 1];
    const int bucket = layout->IndexOf(exact);
    const double width = layout->UpperBound(bucket) - layout->LowerBound(bucket);
    EXPECT_NEAR(s.Quantile(q), exact, width) << "q=" << q;
  }
  EXPECT_NEAR(s.Mean(), 0.005005, 1e-12);
}

TEST(HistogramSnapshotTest, EmptyAndOverflowQuantiles) {
  auto layout = MustCreate(HistogramOptions{});
  EXPECT_TRUE(std::isnan(SnapshotOf(layout, {}).Quantile(0.5)));
  EXPECT_TRUE(std::isnan(SnapshotOf(layout, {}).Mean()));
  // Everything above the range: the +Inf bucket reports its lower edge.
  EXPECT_EQ(SnapshotOf(layout, {500, 600}).Quantile(0.99), 128.0);
}

TEST(HistogramSnapshotTest, MinusGivesTheWindow) {
  auto layout = MustCreate(HistogramOptions{});
  HistogramSnapshot before = SnapshotOf(layout, {0.001, 0.002});
  HistogramSnapshot after = SnapshotOf(layout, {0.001, 0.002, 0.5, 0.5});
  HistogramSnapshot window = after.Minus(before);
  EXPECT_EQ(window.count, 2u);
  EXPECT_DOUBLE_EQ(window.sum, 1.0);
  EXPECT_EQ(window.counts[layout->IndexOf(0.5)], 2u);
  EXPECT_EQ(window.counts[layout->IndexOf(0.001)], 0u);
  EXPECT_NEAR(window.Quantile(0.5), 0.5, 0.5 / 8);
}

TEST(HistogramSnapshotTest, CumulativeCount) {
  auto layout = MustCreate(HistogramOptions{});
  HistogramSnapshot s = SnapshotOf(layout, {1e-9, 0.25, 0.25, 200});
  EXPECT_EQ(s.CumulativeCount(0), 1u);
  EXPECT_EQ(s.CumulativeCount(layout->IndexOf(0.25)), 3u);
  EXPECT_EQ(s.CumulativeCount(layout->num_buckets() - 2), 3u);
  EXPECT_EQ(s.CumulativeCount(layout->num_buckets() - 1), 4u);
}

}  // namespace
}  // namespace bevrpc::metrics
