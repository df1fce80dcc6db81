#include "rpc/metrics/metrics.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bevrpc::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

MetricSpec Spec(std::string name, std::vector<std::string> labels = {},
                std::string unit = "") {
  MetricSpec spec;
  spec.name = std::move(name);
  spec.help = "help";
  spec.unit = std::move(unit);
  spec.label_names = std::move(labels);
  return spec;
}

std::string ErrorOf(absl::Status s) { return std::string(s.message()); }

TEST(MetricsRegistryTest, RejectsBadNames) {
  MetricsRegistry r;
  auto counter_error = [&](MetricSpec spec) {
    absl::StatusOr<CounterFamily*> f = r.RegisterCounterFamily(spec);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    return ErrorOf(f.status());
  };
  EXPECT_THAT(counter_error(Spec("")), HasSubstr("metric name is empty"));
  EXPECT_THAT(counter_error(Spec("9lives")),
              HasSubstr("'9lives' has invalid character '9' at position 0"));
  EXPECT_THAT(counter_error(Spec("a-b")),
              HasSubstr("invalid character '-' at position 1"));
  EXPECT_THAT(counter_error(Spec("calls_total")), HasSubstr("_total"));
  EXPECT_THAT(counter_error(Spec("calls", {"__name"})),
              HasSubstr("'__name' starts with __"));
  EXPECT_THAT(counter_error(Spec("calls", {"a:b"})),
              HasSubstr("label name 'a:b' has invalid character ':'"));
  EXPECT_THAT(counter_error(Spec("calls", {"x", "x"})),
              HasSubstr("label 'x' twice"));
  EXPECT_THAT(counter_error(Spec("read", {}, "bytes")),
              HasSubstr("must end in _bytes"));
  absl::StatusOr<HistogramFamily*> h =
      r.RegisterHistogramFamily(Spec("latency_seconds", {"le"}, "seconds"));
  EXPECT_THAT(ErrorOf(h.status()), HasSubstr("label named le"));
  // Colons are allowed in metric names, not label names.
  EXPECT_TRUE(r.RegisterCounterFamily(Spec("job:calls")).ok());
}

TEST(MetricsRegistryTest, SameSpecReturnsSameFamilyDifferentSpecFails) {
  MetricsRegistry r;
  absl::StatusOr<CounterFamily*> a = r.RegisterCounterFamily(Spec("calls"));
  absl::StatusOr<CounterFamily*> b = r.RegisterCounterFamily(Spec("calls"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  MetricSpec other = Spec("calls");
  other.help = "different";
  EXPECT_EQ(r.RegisterCounterFamily(other).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.RegisterGaugeFamily(Spec("calls")).status().code(),
            absl::StatusCode::kAlreadyExists);
  // A gauge named like a histogram's sample clashes.
  ASSERT_TRUE(r.RegisterHistogramFamily(Spec("wait_seconds", {}, "seconds")).ok());
  absl::StatusOr<GaugeFamily*> clash = r.RegisterGaugeFamily(Spec("wait_seconds_count"));
  EXPECT_THAT(ErrorOf(clash.status()),
              HasSubstr("already exported by 'wait_seconds'"));
  // A gauge named calls_total would clash with the counter's sample.
  EXPECT_EQ(r.RegisterGaugeFamily(Spec("calls_total")).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.RegisterGaugeFamily(Spec("bevrpc_metrics_series_overflow_total"))
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(MetricsRegistryTest, GetReturnsStableSeries) {
  MetricsRegistry r;
  CounterFamily* f = *r.RegisterCounterFamily(Spec("calls", {"method", "code"}));
  Counter* ok = f->Get({"Echo", "OK"});
  EXPECT_EQ(f->Get({"Echo", "OK"}), ok);
  EXPECT_NE(f->Get({"Echo", "NOT_FOUND"}), ok);
  std::string method = "Echo";  // values need not outlive the call
  EXPECT_EQ(f->Get({method, std::string("OK")}), ok);
  ok->Add(5);
  ok->Increment();
  EXPECT_EQ(ok->Value(), 6u);
}

TEST(MetricsRegistryTest, SeriesBoundGivesTheOverflowSeries) {
  MetricsRegistry r;
  MetricSpec spec = Spec("calls", {"peer"});
  spec.max_series = 3;
  CounterFamily* f = *r.RegisterCounterFamily(spec);
  std::vector<Counter*> kept;
  for (int i = 0; i < 3; ++i) {
    kept.push_back(f->Get({absl::StrCat("peer", i)}));
    kept.back()->Increment();
  }
  absl::StatusOr<Counter*> refused = f->TryGet({"peer3"});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(ErrorOf(refused.status()), HasSubstr("max_series 3"));
  for (int i = 3; i < 1000; ++i) {
    Counter* c = f->Get({absl::StrCat("peer", i)});
    EXPECT_EQ(std::find(kept.begin(), kept.end(), c), kept.end());
    c->Add(2);
  }
  // Existing series are still found at the bound.
  EXPECT_EQ(f->Get({"peer1"}), kept[1]);

  RegistrySnapshot snap = r.Collect();
  const FamilySnapshot* calls = snap.Find("calls_total");
  ASSERT_NE(calls, nullptr);
  ASSERT_EQ(calls->series.size(), 4u);  // 3 + overflow
  const SeriesSnapshot* overflow = calls->FindSeries({"__overflow__"});
  ASSERT_NE(overflow, nullptr);
  EXPECT_EQ(overflow->value, 997 * 2);
  const FamilySnapshot* meta =
      snap.Find("bevrpc_metrics_series_overflow_total");
  ASSERT_NE(meta, nullptr);
  ASSERT_EQ(meta->series.size(), 1u);
  EXPECT_THAT(meta->series[0].label_values, ElementsAre("calls"));
  EXPECT_EQ(meta->series[0].value, 997);
}

TEST(MetricsRegistryTest, WrongLabelCount) {
  MetricsRegistry r;
  GaugeFamily* f = *r.RegisterGaugeFamily(Spec("depth", {"queue"}));
  absl::StatusOr<Gauge*> g = f->TryGet({"a", "b"});
  EXPECT_THAT(ErrorOf(g.status()),
              HasSubstr("'depth' takes 1 label values (queue), got 2"));
  Gauge* overflow = f->Get({});
  EXPECT_EQ(f->Get({"x", "y", "z"}), overflow);
  RegistrySnapshot snap = r.Collect();
  ASSERT_NE(snap.Find("bevrpc_metrics_series_overflow_total"), nullptr);
  EXPECT_EQ(snap.Find("bevrpc_metrics_series_overflow_total")->series[0].value,
            2);
}

TEST(MetricsRegistryTest, OverflowOfAFamilyWithoutLabelsIsOnlyCounted) {
  MetricsRegistry r;
  CounterFamily* f = *r.RegisterCounterFamily(Spec("plain"));
  f->Get({})->Add(2);
  f->Get({"unexpected"})->Add(100);
  RegistrySnapshot snap = r.Collect();
  ASSERT_EQ(snap.Find("plain_total")->series.size(), 1u);
  EXPECT_EQ(snap.Find("plain_total")->series[0].value, 2);
  EXPECT_EQ(snap.Find("bevrpc_metrics_series_overflow_total")->series[0].value,
            1);
}

TEST(MetricsRegistryTest, OverflowLabelValuesAreReserved) {
  MetricsRegistry r;
  CounterFamily* f = *r.RegisterCounterFamily(Spec("calls", {"a", "b"}));
  EXPECT_EQ(f->TryGet({"__overflow__", "__overflow__"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(f->TryGet({"__overflow__", "x"}).ok());
}

TEST(MetricsRegistryTest, CountsExactlyAcrossThreadsThatExit) {
  MetricsRegistry r;
  CounterFamily* f = *r.RegisterCounterFamily(Spec("calls", {"method"}));
  Counter* c = f->Get({"Echo"});
  constexpr int kThreads = 8;
  constexpr int kAdds = 100000;
  std::atomic<bool> done{false};
  // A reader summing while the writers run (and exit) must never see a
  // value above the final one or going backwards.
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      const uint64_t v = c->Value();
      EXPECT_GE(v, last);
      EXPECT_LE(v, uint64_t{kThreads} * kAdds);
      last = v;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([c] {
      for (int i = 0; i < kAdds; ++i) c->Increment();
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_EQ(c->Value(), uint64_t{kThreads} * kAdds);
}

TEST(MetricsRegistryTest, GaugeAddsAcrossThreadsAndSets) {
  MetricsRegistry r;
  GaugeFamily* f = *r.RegisterGaugeFamily(Spec("in_flight"));
  Gauge* g = f->Get({});
  std::thread up([g] {
    for (int i = 0; i < 1000; ++i) g->Increment();
  });
  std::thread down([g] {
    for (int i = 0; i < 400; ++i) g->Decrement();
  });
  up.join();
  down.join();
  EXPECT_EQ(g->Value(), 600);
  Gauge* level = (*r.RegisterGaugeFamily(Spec("level")))->Get({});
  level->Set(2.5);
  EXPECT_EQ(level->Value(), 2.5);
  level->Set(-1);
  EXPECT_EQ(level->Value(), -1);
}

// Whole steps and fractional deltas are kept apart (an integer cell and a
// double cell per thread) and add up, also below zero and after the
// writing threads exited.
TEST(MetricsRegistryTest, GaugeStepsAndDeltasAddUp) {
  MetricsRegistry r;
  Gauge* g = (*r.RegisterGaugeFamily(Spec("mixed")))->Get({});
  std::thread down([g] {
    for (int i = 0; i < 3000; ++i) g->Decrement();
    g->Add(0.25);
  });
  down.join();
  EXPECT_EQ(g->Value(), -2999.75);
  g->AddSteps(5000);
  g->Sub(0.5);
  EXPECT_EQ(g->Value(), 2000 - 0.25);
  g->Set(10);  // The last Set() plus every change.
  EXPECT_EQ(g->Value(), 2009.75);
}

TEST(MetricsRegistryTest, HistogramAcrossThreads) {
  MetricsRegistry r;
  HistogramFamily* f =
      *r.RegisterHistogramFamily(Spec("wait_seconds", {}, "seconds"));
  Histogram* h = f->Get({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([h] {
      for (int i = 0; i < 1000; ++i) h->Observe(0.25);
      h->ObserveDuration(absl::Milliseconds(500));
      h->Observe(std::nan(""));  // ignored
    });
  }
  for (std::thread& t : threads) t.join();
  HistogramSnapshot s = h->Snapshot();
  EXPECT_EQ(s.count, 4004u);
  EXPECT_DOUBLE_EQ(s.sum, 4 * (1000 * 0.25 + 0.5));
  EXPECT_EQ(s.counts[f->layout().IndexOf(0.25)], 4000u);
  EXPECT_EQ(s.counts[f->layout().IndexOf(0.5)], 4u);
  EXPECT_EQ(s.CumulativeCount(f->layout().IndexOf(0.25)), 4000u);
}

TEST(MetricsRegistryTest, CallbacksAreReadAtCollectAndRemovedByHandle) {
  MetricsRegistry r;
  GaugeFamily* f = *r.RegisterGaugeFamily(Spec("connections", {"port"}));
  std::atomic<int> value{3};
  absl::StatusOr<CallbackHandle> handle =
      f->AddCallback({"8080"}, [&] { return value.load(); });
  ASSERT_TRUE(handle.ok());
  EXPECT_EQ(f->AddCallback({"8080"}, [] { return 0; }).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(f->TryGet({"8080"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.Collect().Find("connections")->series[0].value, 3);
  value = 9;
  EXPECT_EQ(r.Collect().Find("connections")->series[0].value, 9);
  CallbackHandle moved = *std::move(handle);
  moved.Reset();
  EXPECT_EQ(r.Collect().Find("connections"), nullptr);
  // The labels are free again.
  EXPECT_TRUE(f->AddCallback({"8080"}, [] { return 1; }).ok());
}

TEST(MetricsRegistryTest, CallbackRemovalWaitsForARunningRead) {
  MetricsRegistry r;
  GaugeFamily* f = *r.RegisterGaugeFamily(Spec("slow"));
  std::atomic<bool> in_callback{false};
  std::atomic<bool> release{false};
  std::atomic<bool> removed{false};
  absl::StatusOr<CallbackHandle> handle = f->AddCallback({}, [&] {
    in_callback = true;
    while (!release.load()) std::this_thread::yield();
    EXPECT_FALSE(removed.load());
    return 1.0;
  });
  std::thread reader([&] { r.Collect(); });
  while (!in_callback.load()) std::this_thread::yield();
  std::thread remover([&] {
    handle->Reset();
    removed = true;
  });
  release = true;
  remover.join();
  reader.join();
  EXPECT_TRUE(removed.load());
}

TEST(MetricsRegistryTest, DestroyedRegistryReturnsItsCells) {
  for (int round = 0; round < 3; ++round) {
    MetricsRegistry r;
    Counter* c = (*r.RegisterCounterFamily(Spec("calls")))->Get({});
    EXPECT_EQ(c->Value(), 0u) << "round " << round;
    std::thread([c] { c->Add(5); }).join();
    c->Add(1);
    EXPECT_EQ(c->Value(), 6u);
  }
}

TEST(MetricsRegistryTest, DefaultIsOneRegistry) {
  EXPECT_EQ(&MetricsRegistry::Default(), &MetricsRegistry::Default());
}

}  // namespace
}  // namespace bevrpc::metrics
