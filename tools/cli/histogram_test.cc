#include "tools/cli/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace bevrpc::cli {
namespace {

// The nearest-rank percentile of `sorted`, the definition Percentile() uses.
int64_t ExactPercentile(const std::vector<int64_t>& sorted, double p) {
  int64_t rank = static_cast<int64_t>(std::ceil(p / 100.0 * sorted.size()));
  rank = std::clamp<int64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

TEST(HistogramTest, EmptyIsAllZeros) {
  Histogram h;
  EXPECT_EQ(h.Count(), 0);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
  EXPECT_EQ(h.Mean(), 0);
  EXPECT_EQ(h.RenderAscii(60), "(no samples)\n");
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (int v = 0; v < 128; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 128);
  EXPECT_EQ(h.Percentile(50), 63);  // Rank 64 of 128.
  EXPECT_EQ(h.Percentile(0), 0);
  EXPECT_EQ(h.Percentile(100), 127);
  EXPECT_DOUBLE_EQ(h.Mean(), 63.5);
}

TEST(HistogramTest, PercentilesWithinOnePercentOverManyDecades) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> log_value(0, std::log(1e11));
  std::vector<int64_t> values;
  Histogram h;
  for (int i = 0; i < 200000; ++i) {
    int64_t v = static_cast<int64_t>(std::exp(log_value(rng)));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99}) {
    double exact = static_cast<double>(ExactPercentile(values, p));
    EXPECT_NEAR(h.Percentile(p), exact, exact * 0.01) << "p" << p;
  }
  EXPECT_EQ(h.Min(), values.front());
  EXPECT_EQ(h.Max(), values.back());
  EXPECT_EQ(h.Percentile(100), values.back());
}

TEST(HistogramTest, WorstCaseErrorIsUnderHalfABucket) {
  // Every value of one power of two, one at a time.
  for (int64_t v = 1 << 20; v < (1 << 21); v += 997) {
    Histogram h;
    h.Record(v);
    h.Record(v);  // Min == Max would clamp; widen with a far value.
    h.Record(int64_t{1} << 30);
    double got = h.Percentile(50);
    EXPECT_LE(std::abs(got - v) / v, 1.0 / 256 + 1e-9) << v;
  }
}

TEST(HistogramTest, NinetyNinePointNineOfAThousandIsRank999) {
  Histogram h;
  for (int v = 1; v <= 1000; ++v) h.Record(v * 1000);
  EXPECT_NEAR(h.Percentile(99.9), 999000, 999000 * 0.005);
  EXPECT_EQ(h.Percentile(100), 1000000);
}

TEST(HistogramTest, MergeEqualsRecordingEverythingInOne) {
  Histogram a, b, all;
  for (int i = 1; i <= 5000; ++i) {
    int64_t v = static_cast<int64_t>(i) * 7919 % 1000003;
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  Histogram merged;
  merged.Merge(a);
  merged.Merge(b);
  merged.Merge(Histogram());  // Empty merges change nothing.
  EXPECT_EQ(merged.Count(), all.Count());
  EXPECT_EQ(merged.Min(), all.Min());
  EXPECT_EQ(merged.Max(), all.Max());
  EXPECT_DOUBLE_EQ(merged.Mean(), all.Mean());
  for (double p : {0.0, 50.0, 90.0, 99.0, 100.0}) {
    EXPECT_EQ(merged.Percentile(p), all.Percentile(p)) << p;
  }
}

TEST(HistogramTest, ExtremesClampButStayExactAtTheEnds) {
  Histogram h;
  h.Record(-5);
  h.Record(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(h.Percentile(0), 0);
  EXPECT_EQ(h.Percentile(100),
            static_cast<double>(std::numeric_limits<int64_t>::max()));
}

TEST(HistogramTest, ClearEmpties) {
  Histogram h;
  h.Record(100);
  h.Clear();
  EXPECT_EQ(h.Count(), 0);
  EXPECT_EQ(h.Max(), 0);
  h.Record(7);
  EXPECT_EQ(h.Min(), 7);
}

TEST(HistogramTest, RenderAsciiRowsAddUpAndFitTheWidth) {
  Histogram h;
  for (int i = 0; i < 1000; ++i) h.Record(50000 + i * 100);  // 50-150 us
  for (int i = 0; i < 10; ++i) h.Record(5000000);            // 5 ms tail
  std::string picture = h.RenderAscii(72);
  std::vector<std::string> lines =
      absl::StrSplit(picture, '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u);
  ASSERT_LE(lines.size(), 20u);
  int64_t total = 0;
  for (const std::string& line : lines) {
    EXPECT_LE(line.size(), 72u) << line;
    // "lower - upper |###   |     count  pct%"
    std::vector<std::string> parts = absl::StrSplit(line, '|');
    ASSERT_EQ(parts.size(), 3u) << line;
    std::vector<std::string> tail =
        absl::StrSplit(parts[2], ' ', absl::SkipEmpty());
    ASSERT_EQ(tail.size(), 2u) << line;
    int64_t count = 0;
    ASSERT_TRUE(absl::SimpleAtoi(tail[0], &count)) << line;
    total += count;
  }
  EXPECT_EQ(total, h.Count());
  EXPECT_NE(lines.front().find("50.0us"), std::string::npos) << picture;
  EXPECT_NE(lines.back().find("5.00ms"), std::string::npos) << picture;
  // The tallest row has a full bar of 72 - 40 characters.
  EXPECT_NE(picture.find(std::string(32, '#')), std::string::npos) << picture;
}

TEST(HistogramTest, RenderAsciiOneValueIsOneRow) {
  Histogram h;
  for (int i = 0; i < 5; ++i) h.Record(1234567);
  std::string picture = h.RenderAscii(60);
  EXPECT_EQ(std::count(picture.begin(), picture.end(), '\n'), 1) << picture;
  EXPECT_NE(picture.find("1.23ms - 1.23ms"), std::string::npos) << picture;
}

TEST(HistogramTest, FormatNanosKeepsThreeDigits) {
  EXPECT_EQ(Histogram::FormatNanos(850), "850ns");
  EXPECT_EQ(Histogram::FormatNanos(999.4), "999ns");
  EXPECT_EQ(Histogram::FormatNanos(999.6), "1.00us");
  EXPECT_EQ(Histogram::FormatNanos(12345), "12.3us");
  EXPECT_EQ(Histogram::FormatNanos(1250000), "1.25ms");
  EXPECT_EQ(Histogram::FormatNanos(2.5e9), "2.50s");
  EXPECT_EQ(Histogram::FormatNanos(4000e9), "4000s");
}

}  // namespace
}  // namespace bevrpc::cli
