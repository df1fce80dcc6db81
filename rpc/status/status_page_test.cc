#include "rpc/status/status_page.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "rpc/metrics/metrics.h"
#include "rpc/status/chart_js.h"

namespace bevrpc::status {
namespace {

using metrics::MetricSpec;

// The server's families as rpc/metrics registers them (the observability
// contract's names), in a registry of the test's own.
class ServerMetrics {
 public:
  ServerMetrics() {
    MetricSpec handled;
    handled.name = "bevrpc_server_handled";
    handled.label_names = {"service", "method", "code"};
    handled_ = *registry.RegisterCounterFamily(handled);
    MetricSpec latency;
    latency.name = "bevrpc_server_handling_seconds";
    latency.unit = "seconds";
    latency.label_names = {"service", "method"};
    latency_ = *registry.RegisterHistogramFamily(latency);
    MetricSpec in_flight;
    in_flight.name = "bevrpc_server_in_flight";
    in_flight.label_names = {"service", "method"};
    in_flight_ = *registry.RegisterGaugeFamily(in_flight);
    MetricSpec connections;
    connections.name = "bevrpc_server_connections";
    connections_ = *registry.RegisterGaugeFamily(connections);
  }

  // `n` calls of service/method ending with `code`, each taking `seconds`.
  void Calls(absl::string_view service, absl::string_view method,
             absl::string_view code, int n, double seconds) {
    handled_->Get({service, method, code})->Add(n);
    for (int i = 0; i < n; ++i) latency_->Get({service, method})->Observe(seconds);
  }
  void SetInFlight(absl::string_view service, absl::string_view method,
                   double n) {
    in_flight_->Get({service, method})->Set(n);
  }
  void SetConnections(double n) { connections_->Get({})->Set(n); }

  metrics::MetricsRegistry registry;

 private:
  metrics::CounterFamily* handled_;
  metrics::HistogramFamily* latency_;
  metrics::GaugeFamily* in_flight_;
  metrics::GaugeFamily* connections_;
};

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

StatusPageOptions OptionsFor(ServerMetrics* m) {
  StatusPageOptions options;
  options.registry = &m->registry;
  options.start_time = kT0 - absl::Seconds(3725);  // up 1h 2m 5s at kT0
  options.title = "echo on 127.0.0.1:1234";
  return options;
}

// The JSON object of one method (from its "service" key to its history).
std::string MethodJson(const std::string& json, absl::string_view service,
                       absl::string_view method) {
  const std::string start =
      absl::StrCat("{\"service\":\"", service, "\",\"method\":\"", method, "\"");
  const size_t begin = json.find(start);
  if (begin == std::string::npos) return "";
  const size_t end = json.find("{\"service\":", begin + 1);
  return json.substr(begin, end == std::string::npos ? std::string::npos
                                                     : end - begin);
}

// The number after "key": in `json` (NaN when null or absent).
double Number(const std::string& json, absl::string_view key) {
  const std::string k = absl::StrCat("\"", key, "\":");
  const size_t at = json.find(k);
  if (at == std::string::npos) return std::nan("");
  const size_t begin = at + k.size();
  const size_t end = json.find_first_of(",}]", begin);
  double v;
  if (!absl::SimpleAtod(json.substr(begin, end - begin), &v)) return std::nan("");
  return v;
}

// The array after "key": in `json`, as text.
std::string Array(const std::string& json, absl::string_view key) {
  const std::string k = absl::StrCat("\"", key, "\":[");
  const size_t at = json.find(k);
  if (at == std::string::npos) return "<absent>";
  const size_t begin = at + k.size();
  return json.substr(begin, json.find(']', begin) - begin);
}

TEST(StatusPageTest, EmptyRegistryShowsNoCalls) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  page.Sample(kT0);
  const std::string json = page.RenderJson(kT0, true);
  EXPECT_TRUE(absl::StrContains(json, "\"methods\":[]")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"connections\":null")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"in_flight\":null")) << json;
  EXPECT_EQ(Number(json, "uptime_seconds"), 3725);
  const std::string html = page.RenderHtml(kT0);
  EXPECT_TRUE(absl::StrContains(html, "No calls yet.")) << html;
  EXPECT_TRUE(absl::StrContains(html, "up <span id=\"bevrpc-uptime\">1h 2m 5s"))
      << html;
}

TEST(StatusPageTest, RatesAndQuantilesFromOneSecond) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 5, 0.001);  // before the baseline
  m.SetConnections(3);
  m.SetInFlight("bevrpc.echo.Echo", "Echo", 2);
  page.Sample(kT0);
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 30, 0.001);
  m.Calls("bevrpc.echo.Echo", "Echo", "NOT_FOUND", 10, 0.1);
  page.Sample(kT0 + absl::Seconds(1));

  const std::string json = page.RenderJson(kT0 + absl::Seconds(1), true);
  const std::string echo = MethodJson(json, "bevrpc.echo.Echo", "Echo");
  ASSERT_FALSE(echo.empty()) << json;
  EXPECT_EQ(Number(echo, "qps"), 40);
  EXPECT_EQ(Number(echo, "error_rate"), 0.25);
  EXPECT_EQ(Number(echo, "calls"), 40);
  EXPECT_EQ(Number(echo, "errors"), 10);
  EXPECT_EQ(Number(echo, "in_flight"), 2);
  // Quantiles are exact up to the width of their bucket (12.5%).
  EXPECT_NEAR(Number(echo, "p50_seconds"), 0.001, 0.001 * 0.125);
  EXPECT_NEAR(Number(echo, "p99_seconds"), 0.1, 0.1 * 0.125);
  EXPECT_EQ(Number(json, "connections"), 3);
  EXPECT_EQ(Number(json, "in_flight"), 2);
  // One chart point, at the second sample.
  EXPECT_EQ(Array(echo, "t"), "1700000001.000");
  EXPECT_EQ(Array(echo, "qps"), "40");
  EXPECT_EQ(Array(echo, "error_rate"), "0.25");
}

TEST(StatusPageTest, FirstSampleIsOnlyABaseline) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 5, 0.001);
  page.Sample(kT0);
  const std::string echo = MethodJson(page.RenderJson(kT0, true),
                                      "bevrpc.echo.Echo", "Echo");
  EXPECT_TRUE(absl::StrContains(echo, "\"qps\":null")) << echo;
  EXPECT_EQ(Array(echo, "t"), "");
  const std::string html = page.RenderHtml(kT0);
  EXPECT_TRUE(absl::StrContains(html, "<td class=\"qps\">-</td>")) << html;
}

TEST(StatusPageTest, AMethodFirstSeenLaterCountsFromZero) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 1, 0.001);
  page.Sample(kT0);
  m.Calls("bevrpc.kv.KeyValue", "Get", "OK", 6, 0.002);
  page.Sample(kT0 + absl::Seconds(2));
  const std::string kv = MethodJson(page.RenderJson(kT0, true),
                                    "bevrpc.kv.KeyValue", "Get");
  EXPECT_EQ(Number(kv, "qps"), 3) << kv;
  EXPECT_EQ(Number(kv, "calls"), 6) << kv;
}

TEST(StatusPageTest, TableIsOverTheWindowChartsPerSample) {
  ServerMetrics m;
  StatusPageOptions options = OptionsFor(&m);
  options.window = absl::Seconds(10);
  StatusPage page(options);
  page.Sample(kT0);
  // 20 s: 4 calls/s for the first 10, then 1 call/s.
  for (int s = 1; s <= 20; ++s) {
    m.Calls("bevrpc.echo.Echo", "Echo", "OK", s <= 10 ? 4 : 1, 0.001);
    page.Sample(kT0 + absl::Seconds(s));
  }
  const std::string echo = MethodJson(page.RenderJson(kT0, true),
                                      "bevrpc.echo.Echo", "Echo");
  EXPECT_EQ(Number(echo, "qps"), 1) << echo;
  EXPECT_EQ(Number(echo, "calls"), 10) << echo;
  EXPECT_EQ(Array(echo, "qps"), "4,4,4,4,4,4,4,4,4,4,1,1,1,1,1,1,1,1,1,1");
  // A quiet second: no latency, no errors.
  page.Sample(kT0 + absl::Seconds(21));
  const std::string quiet = MethodJson(page.RenderJson(kT0, true),
                                       "bevrpc.echo.Echo", "Echo");
  EXPECT_TRUE(absl::EndsWith(Array(quiet, "qps"), ",1,0")) << quiet;
  EXPECT_TRUE(absl::EndsWith(Array(quiet, "p50_seconds"), ",null")) << quiet;
  EXPECT_TRUE(absl::EndsWith(Array(quiet, "error_rate"), ",0")) << quiet;
}

TEST(StatusPageTest, HistoryIsBoundedOldestDropped) {
  ServerMetrics m;
  StatusPageOptions options = OptionsFor(&m);
  options.history = absl::Seconds(5);
  StatusPage page(options);
  page.Sample(kT0);
  for (int s = 1; s <= 8; ++s) {
    m.Calls("bevrpc.echo.Echo", "Echo", "OK", s, 0.001);
    page.Sample(kT0 + absl::Seconds(s));
  }
  const std::string echo = MethodJson(page.RenderJson(kT0, true),
                                      "bevrpc.echo.Echo", "Echo");
  EXPECT_EQ(Array(echo, "qps"), "4,5,6,7,8");
  EXPECT_EQ(Array(echo, "t"),
            "1700000004.000,1700000005.000,1700000006.000,1700000007.000,"
            "1700000008.000");
}

TEST(StatusPageTest, MethodsBeyondTheBoundAreCountedNotKept) {
  ServerMetrics m;
  StatusPageOptions options = OptionsFor(&m);
  options.max_methods = 2;
  StatusPage page(options);
  m.Calls("a.S", "M", "OK", 1, 0.001);
  m.Calls("b.S", "M", "OK", 1, 0.001);
  m.Calls("c.S", "M", "OK", 1, 0.001);
  page.Sample(kT0);
  page.Sample(kT0 + absl::Seconds(1));
  EXPECT_EQ(page.num_methods(), 2u);
  EXPECT_EQ(page.methods_not_shown(), 1u);
  const std::string json = page.RenderJson(kT0, false);
  EXPECT_FALSE(MethodJson(json, "a.S", "M").empty());
  EXPECT_FALSE(MethodJson(json, "b.S", "M").empty());
  EXPECT_TRUE(MethodJson(json, "c.S", "M").empty());
  EXPECT_EQ(Number(json, "methods_not_shown"), 1);
  EXPECT_TRUE(absl::StrContains(page.RenderHtml(kT0),
                                " 1 more methods not shown (at most 2)."));
}

TEST(StatusPageTest, CounterResetAndClockGoingBackAreHarmless) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 10, 0.001);
  page.Sample(kT0);
  page.Sample(kT0 - absl::Seconds(5));  // ignored
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 2, 0.001);
  page.Sample(kT0 + absl::Seconds(2));
  const std::string echo = MethodJson(page.RenderJson(kT0, true),
                                      "bevrpc.echo.Echo", "Echo");
  EXPECT_EQ(Array(echo, "qps"), "1");
}

TEST(StatusPageTest, HtmlHasTableChartsAndEmbeddedData) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  page.Sample(kT0);
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 3, 0.0005);
  m.SetConnections(1);
  page.Sample(kT0 + absl::Seconds(1));
  const std::string html = page.RenderHtml(kT0 + absl::Seconds(1));
  for (const std::string& want : std::vector<std::string>{
           "<!DOCTYPE html>",
           "<title>echo on 127.0.0.1:1234 - status</title>",
           "<tr data-method=\"bevrpc.echo.Echo/Echo\"><td>bevrpc.echo.Echo"
           "</td><td>Echo</td><td class=\"qps\">3.0</td><td class=\"error_rate"
           "\">0.00%</td><td class=\"p50\">",
           "<span id=\"bevrpc-connections\">1</span> connections",
           "<canvas class=\"bevrpc-chart\" id=\"bevrpc-chart-0-traffic\" "
           "data-method=\"bevrpc.echo.Echo/Echo\" data-kind=\"traffic\">",
           "id=\"bevrpc-chart-0-latency\"",
           "<script src=\"" + ChartJsUrl() + "\"></script>",
           "<script id=\"bevrpc-status-data\" type=\"application/json\">"
           "{\"title\":\"echo on 127.0.0.1:1234\"",
           "data-rendered",
       }) {
    EXPECT_TRUE(absl::StrContains(html, want)) << "no " << want << " in\n"
                                                << html;
  }
  // p50 of 3 calls at 500 us, formatted in microseconds.
  EXPECT_TRUE(absl::StrContains(html, " \xC2\xB5s</td>")) << html;
}

TEST(StatusPageTest, IdleMethodsAreListedWithoutChartsUnknownHidden) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 0, 0.001);     // registered, idle
  m.Calls("__unknown__", "__unknown__", "UNIMPLEMENTED", 0, 0.001);
  m.Calls("bevrpc.echo.Echo", "Expand", "OK", 2, 0.001);
  page.Sample(kT0);
  const std::string html = page.RenderHtml(kT0);
  EXPECT_TRUE(absl::StrContains(html, "<tr data-method=\"bevrpc.echo.Echo/Echo\">"));
  EXPECT_FALSE(absl::StrContains(html, "<tr data-method=\"__unknown__"));
  EXPECT_FALSE(absl::StrContains(html, "data-method=\"bevrpc.echo.Echo/Echo\" data-kind"));
  EXPECT_TRUE(absl::StrContains(
      html, "<canvas class=\"bevrpc-chart\" id=\"bevrpc-chart-0-traffic\" "
            "data-method=\"bevrpc.echo.Echo/Expand\""));
  m.Calls("__unknown__", "__unknown__", "UNIMPLEMENTED", 1, 0.001);
  page.Sample(kT0 + absl::Seconds(1));
  EXPECT_TRUE(absl::StrContains(page.RenderHtml(kT0),
                                "<tr data-method=\"__unknown__/__unknown__\">"));
}

TEST(StatusPageTest, NamesAreEscapedInHtmlAndInlineJson) {
  ServerMetrics m;
  StatusPageOptions options = OptionsFor(&m);
  options.title = "<b>&";
  StatusPage page(options);
  m.Calls("x</script><script>alert(1)</script>", "M\"", "OK", 1, 0.001);
  page.Sample(kT0);
  const std::string html = page.RenderHtml(kT0);
  EXPECT_FALSE(absl::StrContains(html, "alert(1)</script>")) << html;
  EXPECT_TRUE(absl::StrContains(html, "<h1>&lt;b&gt;&amp;</h1>")) << html;
  EXPECT_TRUE(absl::StrContains(
      html, "<td>x&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</td>"
            "<td>M&quot;</td>"))
      << html;
  EXPECT_TRUE(absl::StrContains(
      html, "\"service\":\"x\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"
            "\\u003c/script\\u003e\",\"method\":\"M\\\"\""))
      << html;
}

TEST(StatusPageTest, HandleServesHtmlJsonAndRefusesPost) {
  ServerMetrics m;
  StatusPage page(OptionsFor(&m));
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 1, 0.001);
  page.Sample(kT0);

  admin::HttpRequest request;
  request.method = "GET";
  request.path = "/status";
  admin::HttpResponse html = page.Handle(request);
  EXPECT_EQ(html.status, 200);
  EXPECT_EQ(html.content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(absl::StartsWith(html.body, "<!DOCTYPE html>"));
  ASSERT_EQ(html.headers.size(), 1u);
  EXPECT_EQ(html.headers[0],
            std::make_pair(std::string("Cache-Control"), std::string("no-store")));

  request.query["format"] = "json";
  admin::HttpResponse json = page.Handle(request);
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_TRUE(absl::StartsWith(json.body, "{\"title\":")) << json.body;
  EXPECT_TRUE(absl::StrContains(json.body, "\"history\":{")) << json.body;
  request.query["history"] = "0";
  EXPECT_FALSE(absl::StrContains(page.Handle(request).body, "\"history\""));

  admin::HttpRequest accept;
  accept.method = "GET";
  accept.path = "/status";
  accept.headers["accept"] = "application/json";
  EXPECT_EQ(page.Handle(accept).content_type, "application/json");

  request.method = "POST";
  admin::HttpResponse post = page.Handle(request);
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.body, "POST not allowed on /status; use GET\n");
}

TEST(StatusPageTest, SamplingThreadSamplesUntilStopped) {
  ServerMetrics m;
  StatusPageOptions options = OptionsFor(&m);
  options.sample_interval = absl::Milliseconds(10);
  StatusPage page(options);
  page.StartSampling();
  page.StartSampling();  // idempotent
  m.Calls("bevrpc.echo.Echo", "Echo", "OK", 1, 0.001);
  // Wait (generously) until a sample has seen the method and another one
  // has made a chart point of it.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string points;
  while (absl::Now() < deadline) {
    points = Array(MethodJson(page.RenderJson(absl::Now(), true),
                              "bevrpc.echo.Echo", "Echo"),
                   "qps");
    if (!points.empty() && points != "<absent>") break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_FALSE(points.empty() || points == "<absent>");
  page.StopSampling();
  page.StopSampling();  // idempotent
  page.StartSampling();  // and again, then destroyed while running
}

}  // namespace
}  // namespace bevrpc::status
