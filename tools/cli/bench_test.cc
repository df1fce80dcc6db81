#include "tools/cli/bench.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "services/echo/echo.pb.h"

namespace bevrpc::cli {
namespace {

class BenchOptionsTest : public ::testing::Test {
 protected:
  BenchOptions Valid() {
    BenchOptions o;
    o.address = "127.0.0.1:1";
    o.method = "bevrpc.echo.Echo/Echo";
    o.request = &request_;
    o.response_prototype = &response_;
    return o;
  }
  // RunBench's error for options that Valid() with `change` applied.
  template <typename F>
  absl::Status ErrorFor(F change) {
    BenchOptions o = Valid();
    change(o);
    absl::StatusOr<BenchResult> result = RunBench(o);
    return result.status();
  }

  echo::EchoRequest request_;
  echo::EchoResponse response_;
};

TEST_F(BenchOptionsTest, RejectsBadOptionsNamingTheField) {
  struct Case {
    const char* field;
    std::function<void(BenchOptions&)> change;
  };
  const Case cases[] = {
      {"address", [](BenchOptions& o) { o.address.clear(); }},
      {"method", [](BenchOptions& o) { o.method.clear(); }},
      {"request", [](BenchOptions& o) { o.request = nullptr; }},
      {"response_prototype",
       [](BenchOptions& o) { o.response_prototype = nullptr; }},
      {"connections", [](BenchOptions& o) { o.connections = 0; }},
      {"concurrency", [](BenchOptions& o) { o.concurrency = 0; }},
      {"rps", [](BenchOptions& o) { o.rps = -1; }},
      {"rps", [](BenchOptions& o) { o.rps = 1e300; }},
      {"max_outstanding",
       [](BenchOptions& o) {
         o.rps = 10;
         o.max_outstanding = 0;
       }},
      {"total_calls", [](BenchOptions& o) { o.total_calls = -1; }},
      {"duration", [](BenchOptions& o) { o.duration = absl::ZeroDuration(); }},
      {"duration",
       [](BenchOptions& o) { o.duration = absl::InfiniteDuration(); }},
      {"warmup", [](BenchOptions& o) { o.warmup = absl::Seconds(-1); }},
      {"drain_timeout",
       [](BenchOptions& o) { o.drain_timeout = absl::InfiniteDuration(); }},
      {"threads", [](BenchOptions& o) { o.threads = 0; }},
      {"timeout", [](BenchOptions& o) { o.timeout = absl::ZeroDuration(); }},
      {"progress_interval",
       [](BenchOptions& o) { o.progress_interval = absl::ZeroDuration(); }},
  };
  for (const Case& c : cases) {
    absl::Status s = ErrorFor(c.change);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_TRUE(absl::StrContains(s.message(), c.field))
        << c.field << ": " << s;
  }
}

TEST_F(BenchOptionsTest, OpenLoopIgnoresConcurrency) {
  // Validation passes; the address is bad, so Channel::Create fails.
  absl::Status s = ErrorFor([](BenchOptions& o) {
    o.rps = 100;
    o.concurrency = 0;
    o.address = "not an address";
  });
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(absl::StrContains(s.message(), "concurrency")) << s;
}

TEST_F(BenchOptionsTest, BadAddressFailsTheRun) {
  absl::Status s =
      ErrorFor([](BenchOptions& o) { o.address = "no-port-here"; });
  EXPECT_FALSE(s.ok());
}

BenchResult SampleResult() {
  BenchResult r;
  // Values below 128 ns are exact, so every percentile is known: rank 500
  // is 10 ns, rank 900 is 20 ns, rank 990 is 30 ns, rank 999 is 40 ns.
  for (int i = 0; i < 500; ++i) r.latency.Record(10);
  for (int i = 0; i < 400; ++i) r.latency.Record(20);
  for (int i = 0; i < 90; ++i) r.latency.Record(30);
  for (int i = 0; i < 9; ++i) r.latency.Record(40);
  r.latency.Record(50);
  r.calls = r.latency.Count();
  r.seconds = 2;
  r.qps = 500;
  r.errors_by_code[absl::StatusCode::kUnavailable] = 2;
  r.errors_by_code[absl::StatusCode::kNotFound] = 1;
  r.bad_responses = 4;
  r.unanswered = 5;
  r.errors = 12;
  r.connections = 2;
  r.concurrency = 8;
  r.threads = 1;
  r.endpoint_calls = {{"127.0.0.1:1", 600}, {"[::1]:2", 400}};
  return r;
}

TEST(BenchFormatTest, JsonLineHasTheContractKeysInOrder) {
  std::string line =
      FormatJsonLine(SampleResult(), "bevrpc", 2, 8, 64, 1);
  EXPECT_EQ(FormatJsonLine(SampleResult(), "bevrpc", 2, 8, 64, 1,
                           /*with_endpoints=*/true),
            line.substr(0, line.size() - 2) +
                ",\"endpoints\":{\"127.0.0.1:1\":600,\"[::1]:2\":400}}\n");
  EXPECT_EQ(line,
            "{\"system\":\"bevrpc\",\"connections\":2,\"concurrency\":8,"
            "\"payload\":64,\"qps\":500.0,\"p50_us\":0.01,"
            "\"p90_us\":0.02,\"p99_us\":0.03,\"p999_us\":0.04,"
            "\"errors\":12,\"calls\":1000,\"threads\":1,"
            "\"duration_s\":2.000}\n");
}

TEST(BenchFormatTest, JsonLineEscapesTheSystemName) {
  std::string line = FormatJsonLine(BenchResult(), "a\"b\\c\n", 1, 1, 0, 1);
  EXPECT_TRUE(absl::StartsWith(line, "{\"system\":\"a\\\"b\\\\c\\u000a\","))
      << line;
  // An empty result is all zeros, not NaN.
  EXPECT_TRUE(absl::StrContains(line, "\"qps\":0.0,\"p50_us\":0.00")) << line;
}

TEST(BenchFormatTest, SummaryNamesPercentilesAndErrorCodes) {
  std::string s = FormatSummary(SampleResult(), 60);
  for (const char* want :
       {"closed loop, 8 outstanding over 2 connection(s)", "1000 OK in 2.00 s",
        "qps         500.0",
        "p50 10ns  p90 20ns  p99 30ns  p99.9 40ns  max 50ns",
        "errors      12 (NOT_FOUND 1, UNAVAILABLE 2, bad response 4, "
        "unanswered 5)",
        "histogram\n"}) {
    EXPECT_TRUE(absl::StrContains(s, want)) << want << "\n" << s;
  }
  EXPECT_FALSE(absl::StrContains(s, "dropped")) << s;
}

TEST(BenchFormatTest, OpenLoopSummaryShowsRateAndDrops) {
  BenchResult r = SampleResult();
  r.target_rps = 750;
  r.dropped = 3;
  std::string s = FormatSummary(r);
  EXPECT_TRUE(absl::StrContains(s, "open loop at 750.0 calls/s")) << s;
  EXPECT_TRUE(absl::StrContains(s, "dropped     3")) << s;
}

}  // namespace
}  // namespace bevrpc::cli
