#include "rpc/metrics/exposition.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/metrics/metrics.h"

namespace bevrpc::metrics {
namespace {

MetricSpec Spec(std::string name, std::string help,
                std::vector<std::string> labels, std::string unit = "") {
  MetricSpec spec;
  spec.name = std::move(name);
  spec.help = std::move(help);
  spec.unit = std::move(unit);
  spec.label_names = std::move(labels);
  return spec;
}

// A counter with two labels, a gauge without labels and a histogram with a
// small layout: buckets <=0.25, (0.25,0.375], (0.375,0.5], (0.5,0.75],
// (0.75,1], >1; exported at 0.25, 0.5, 1, +Inf.
void Fill(MetricsRegistry* r) {
  CounterFamily* calls =
      *r->RegisterCounterFamily(Spec("app_requests", "Requests served.",
                                     {"method", "code"}));
  calls->Get({"Get", "OK"})->Add(3);
  calls->Get({"Get", "NOT_FOUND"})->Increment();
  calls->Get({"Put", "OK"});
  (*r->RegisterGaugeFamily(Spec("app_queue_length", "Items waiting.", {})))
      ->Get({})
      ->Set(7);
  HistogramOptions small;
  small.min_value = 0.25;
  small.max_value = 1;
  small.sub_buckets_per_octave = 2;
  HistogramFamily* latency = *r->RegisterHistogramFamily(
      Spec("app_latency_seconds", "Request latency.", {"method"}, "seconds"),
      small);
  Histogram* get = latency->Get({"Get"});
  for (double v : {0.25, 0.5, 0.625, 3.0}) get->Observe(v);
  // Registered but never given a series: not exported.
  ASSERT_TRUE(r->RegisterGaugeFamily(Spec("app_unused", "x", {})).ok());
}

TEST(ExpositionTest, PrometheusTextGolden) {
  MetricsRegistry r;
  Fill(&r);
  std::string text;
  r.RenderPrometheus(&text);
  EXPECT_EQ(text,
            "# HELP app_latency_seconds Request latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{method=\"Get\",le=\"0.25\"} 1\n"
            "app_latency_seconds_bucket{method=\"Get\",le=\"0.5\"} 2\n"
            "app_latency_seconds_bucket{method=\"Get\",le=\"1\"} 3\n"
            "app_latency_seconds_bucket{method=\"Get\",le=\"+Inf\"} 4\n"
            "app_latency_seconds_sum{method=\"Get\"} 4.375\n"
            "app_latency_seconds_count{method=\"Get\"} 4\n"
            "# HELP app_queue_length Items waiting.\n"
            "# TYPE app_queue_length gauge\n"
            "app_queue_length 7\n"
            "# HELP app_requests_total Requests served.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{method=\"Get\",code=\"NOT_FOUND\"} 1\n"
            "app_requests_total{method=\"Get\",code=\"OK\"} 3\n"
            "app_requests_total{method=\"Put\",code=\"OK\"} 0\n");
}

TEST(ExpositionTest, JsonGolden) {
  MetricsRegistry r;
  Fill(&r);
  RegistrySnapshot snap = r.Collect();
  snap.time = absl::UnixEpoch() + absl::Milliseconds(1500);
  std::string json;
  RenderJson(snap, &json);
  EXPECT_EQ(
      json,
      "{\"time\":1.5,\"families\":["
      "{\"name\":\"app_latency_seconds\",\"type\":\"histogram\","
      "\"help\":\"Request latency.\",\"unit\":\"seconds\","
      "\"labels\":[\"method\"],\"series\":[{\"labels\":{\"method\":\"Get\"},"
      "\"count\":4,\"sum\":4.375,\"mean\":1.09375,\"p50\":0.5,\"p90\":1,"
      "\"p99\":1,\"buckets\":[{\"le\":0.25,\"count\":1},"
      "{\"le\":0.5,\"count\":2},{\"le\":1,\"count\":3},"
      "{\"le\":\"+Inf\",\"count\":4}]}]},"
      "{\"name\":\"app_queue_length\",\"type\":\"gauge\","
      "\"help\":\"Items waiting.\",\"unit\":\"\",\"labels\":[],"
      "\"series\":[{\"labels\":{},\"value\":7}]},"
      "{\"name\":\"app_requests_total\",\"type\":\"counter\","
      "\"help\":\"Requests served.\",\"unit\":\"\","
      "\"labels\":[\"method\",\"code\"],\"series\":["
      "{\"labels\":{\"method\":\"Get\",\"code\":\"NOT_FOUND\"},\"value\":1},"
      "{\"labels\":{\"method\":\"Get\",\"code\":\"OK\"},\"value\":3},"
      "{\"labels\":{\"method\":\"Put\",\"code\":\"OK\"},\"value\":0}]}]}");
}

TEST(ExpositionTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  CounterFamily* f = *r.RegisterCounterFamily(
      Spec("odd", "Back\\slash, \"quotes\" and\nnewline.", {"path"}));
  f->Get({"C:\\dir \"x\"\nnext"})->Increment();
  std::string text;
  r.RenderPrometheus(&text);
  EXPECT_EQ(text,
            "# HELP odd_total Back\\\\slash, \"quotes\" and\\nnewline.\n"
            "# TYPE odd_total counter\n"
            "odd_total{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
  std::string json;
  r.RenderJson(&json);
  EXPECT_THAT(json, ::testing::HasSubstr(
                        "{\"path\":\"C:\\\\dir \\\"x\\\"\\u000anext\"}"));
  EXPECT_THAT(json, ::testing::HasSubstr(
                        "\"help\":\"Back\\\\slash, \\\"quotes\\\" "
                        "and\\u000anewline.\""));
}

TEST(ExpositionTest, EmptyHelpHasNoHelpLine) {
  MetricsRegistry r;
  (*r.RegisterGaugeFamily(Spec("bare", "", {})))->Get({})->Set(1);
  std::string text;
  r.RenderPrometheus(&text);
  EXPECT_EQ(text, "# TYPE bare gauge\nbare 1\n");
}

TEST(ExpositionTest, NumberFormats) {
  EXPECT_EQ(FormatPrometheusValue(3), "3");
  EXPECT_EQ(FormatPrometheusValue(-42), "-42");
  EXPECT_EQ(FormatPrometheusValue(-0.0), "0");
  EXPECT_EQ(FormatPrometheusValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatPrometheusValue(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatPrometheusValue(1e20), "1e+20");
  EXPECT_EQ(FormatPrometheusValue(0.5), "0.5");
  EXPECT_EQ(FormatPrometheusValue(0.1), "0.1");
  EXPECT_EQ(FormatPrometheusValue(1e-6), "1e-06");
  EXPECT_EQ(FormatPrometheusValue(std::ldexp(1.0, -20)), "9.5367431640625e-07");
  EXPECT_EQ(FormatPrometheusValue(std::numeric_limits<double>::infinity()),
            "+Inf");
  EXPECT_EQ(FormatPrometheusValue(-std::numeric_limits<double>::infinity()),
            "-Inf");
  EXPECT_EQ(FormatPrometheusValue(std::nan("")), "NaN");
}

TEST(ExpositionTest, JsonNonFiniteValuesAreStrings) {
  MetricsRegistry r;
  (*r.RegisterGaugeFamily(Spec("inf", "", {})))
      ->Get({})
      ->Set(std::numeric_limits<double>::infinity());
  (*r.RegisterHistogramFamily(Spec("empty_seconds", "", {}, "seconds")))
      ->Get({});
  std::string json;
  r.RenderJson(&json);
  EXPECT_THAT(json, ::testing::HasSubstr("\"value\":\"+Inf\""));
  EXPECT_THAT(json, ::testing::HasSubstr(
                        "\"count\":0,\"sum\":0,\"mean\":null,\"p50\":null,"
                        "\"p90\":null,\"p99\":null"));
}

TEST(ExpositionTest, DefaultHistogramExportsTwentyNineBuckets) {
  MetricsRegistry r;
  Histogram* h =
      (*r.RegisterHistogramFamily(Spec("rpc_seconds", "", {}, "seconds")))
          ->Get({});
  h->Observe(0.003);
  std::string text;
  r.RenderPrometheus(&text);
  int buckets = 0;
  for (size_t at = text.find("_bucket"); at != std::string::npos;
       at = text.find("_bucket", at + 1)) {
    ++buckets;
  }
  EXPECT_EQ(buckets, 29);
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "rpc_seconds_bucket{le=\"9.5367431640625e-07\"} 0\n"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "rpc_seconds_bucket{le=\"0.001953125\"} 0\n"
                        "rpc_seconds_bucket{le=\"0.00390625\"} 1\n"));
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "rpc_seconds_bucket{le=\"128\"} 1\n"
                        "rpc_seconds_bucket{le=\"+Inf\"} 1\n"
                        "rpc_seconds_sum 0.003\n"
                        "rpc_seconds_count 1\n"));
}

}  // namespace
}  // namespace bevrpc::metrics
