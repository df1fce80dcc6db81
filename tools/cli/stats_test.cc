#include "tools/cli/stats.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/cli/prom_text.h"

namespace bevrpc::cli {
namespace {

std::vector<PromSample> Parse(absl::string_view text) {
  absl::StatusOr<std::vector<PromSample>> s = ParsePrometheusText(text);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : std::vector<PromSample>{};
}

TEST(PromTextTest, ReadsSamplesLabelsEscapesAndSpecialValues) {
  auto s = Parse(
      "# HELP x_total Things.\n"
      "# TYPE x_total counter\n"
      "x_total{a=\"1\",b=\"q\\\"uo\\\\te\\n\"} 3\n"
      "\n"
      "plain 2.5e3 1700000000\n"
      "h_bucket{le=\"+Inf\",} +Inf\r\n"
      "n NaN\n");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].name, "x_total");
  EXPECT_EQ(s[0].Label("a"), "1");
  EXPECT_EQ(s[0].Label("b"), "q\"uo\\te\n");
  EXPECT_EQ(s[0].Label("missing"), "");
  EXPECT_EQ(s[0].value, 3);
  EXPECT_EQ(s[1].name, "plain");
  EXPECT_EQ(s[1].value, 2500);
  EXPECT_TRUE(std::isinf(s[2].value));
  EXPECT_EQ(s[2].Label("le"), "+Inf");
  EXPECT_TRUE(std::isnan(s[3].value));
}

TEST(PromTextTest, MalformedLineIsAnErrorNamingIt) {
  for (absl::string_view bad :
       {"ok 1\n{a=\"1\"} 2\n", "ok 1\nx{a=1} 2\n", "ok 1\nx{a=\"1\" 2\n",
        "ok 1\nx\n", "ok 1\nx one\n", "ok 1\nx{a=\"\\q\"} 1\n"}) {
    absl::StatusOr<std::vector<PromSample>> s = ParsePrometheusText(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("line 2"), std::string::npos)
        << s.status();
  }
}

TEST(StatsTest, BucketQuantileInterpolatesWithinTheBucket) {
  // 10 calls <= 1 ms, 10 more <= 2 ms.
  std::vector<std::pair<double, double>> b = {
      {0.001, 10}, {0.002, 20}, {INFINITY, 20}};
  EXPECT_DOUBLE_EQ(BucketQuantile(0.5, b), 0.001);
  EXPECT_DOUBLE_EQ(BucketQuantile(0.25, b), 0.0005);
  EXPECT_DOUBLE_EQ(BucketQuantile(0.75, b), 0.0015);
  EXPECT_TRUE(std::isnan(BucketQuantile(0.5, {{0.001, 0}, {INFINITY, 0}})));
  // Only +Inf: its lower bound.
  EXPECT_DOUBLE_EQ(BucketQuantile(0.99, {{0.001, 0}, {INFINITY, 4}}), 0.001);
}

std::string Page(int ok, int not_found, int fast, int slow, int in_flight) {
  return absl::StrCat(
      "bevrpc_server_handled_total{service=\"s.E\",method=\"M\",code=\"OK\"} ",
      ok, "\n",
      "bevrpc_server_handled_total{service=\"s.E\",method=\"M\",code=\"NOT_"
      "FOUND\"} ",
      not_found, "\n",
      "bevrpc_server_handling_seconds_bucket{service=\"s.E\",method=\"M\","
      "le=\"0.001\"} ",
      fast, "\n",
      "bevrpc_server_handling_seconds_bucket{service=\"s.E\",method=\"M\","
      "le=\"0.01\"} ",
      fast + slow, "\n",
      "bevrpc_server_handling_seconds_bucket{service=\"s.E\",method=\"M\","
      "le=\"+Inf\"} ",
      fast + slow, "\n",
      "bevrpc_server_in_flight{service=\"s.E\",method=\"M\"} ", in_flight,
      "\n",
      "bevrpc_client_handled_total{service=\"o.K\",method=\"V\",code=\"OK\"} "
      "7\n");
}

TEST(StatsTest, RatesAndQuantilesComeFromTheDifference) {
  auto before = Parse(Page(100, 0, 100, 0, 0));
  // 2 s later: 30 OK + 10 NOT_FOUND, 20 fast and 20 slow.
  auto after = Parse(Page(130, 10, 120, 20, 4));
  std::vector<MethodStats> s =
      ComputeStats(before, after, absl::Seconds(2), "server");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].service, "s.E");
  EXPECT_EQ(s[0].method, "M");
  EXPECT_DOUBLE_EQ(s[0].qps, 20);
  EXPECT_DOUBLE_EQ(s[0].error_rate, 0.25);
  EXPECT_DOUBLE_EQ(s[0].p50, 0.001);
  EXPECT_NEAR(s[0].p99, 0.001 + 0.009 * (39.6 - 20) / 20, 1e-12);
  EXPECT_EQ(s[0].in_flight, 4);
  EXPECT_EQ(s[0].total, 140u);

  std::vector<MethodStats> c =
      ComputeStats(before, after, absl::Seconds(2), "client");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].service, "o.K");
  EXPECT_EQ(c[0].qps, 0);
  EXPECT_TRUE(std::isnan(c[0].p50));

  std::string table = FormatStatsTable(s);
  EXPECT_NE(table.find("METHOD"), std::string::npos);
  EXPECT_NE(table.find("s.E/M"), std::string::npos);
  EXPECT_NE(table.find("20.0"), std::string::npos);
  EXPECT_NE(table.find("25.00"), std::string::npos);
  EXPECT_NE(table.find("1.00ms"), std::string::npos);
}

TEST(StatsTest, ARestartBetweenReadsCountsFromZero) {
  auto before = Parse(Page(1000, 0, 1000, 0, 0));
  auto after = Parse(Page(10, 0, 10, 0, 0));
  std::vector<MethodStats> s =
      ComputeStats(before, after, absl::Seconds(1), "server");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_DOUBLE_EQ(s[0].qps, 10);
  EXPECT_DOUBLE_EQ(s[0].p50, 0.0005);
}

}  // namespace
}  // namespace bevrpc::cli
