// What recording a metric costs on the hot path: Counter::Add,
// Gauge::Add and Histogram::Observe (per-thread cells), against a plain
// std::atomic fetch_add on one shared word, with 1 and 2 threads writing
// the same series at once.
//
//   bazel build -c opt //rpc/metrics:metrics_benchmark
//   bazel-bin/rpc/metrics/metrics_benchmark
//
// Time is per operation per thread (real time). With 2 threads the shared
// atomic bounces its cache line between cores; the per-thread cells do not.
// This machine is noisy: compare figures from one run only.
#include <atomic>
#include <cstdint>

#include "benchmark/benchmark.h"
#include "rpc/metrics/metrics.h"

namespace bevrpc::metrics {
namespace {

MetricSpec Spec(const char* name, const char* unit = "") {
  MetricSpec spec;
  spec.name = name;
  spec.unit = unit;
  spec.label_names = {"method"};
  return spec;
}

Counter* TheCounter() {
  static Counter* c = (*MetricsRegistry::Default().RegisterCounterFamily(
                           Spec("bench_calls")))
                          ->Get({"Echo"});
  return c;
}

Gauge* TheGauge() {
  static Gauge* g = (*MetricsRegistry::Default().RegisterGaugeFamily(
                         Spec("bench_in_flight")))
                        ->Get({"Echo"});
  return g;
}

Histogram* TheHistogram() {
  static Histogram* h = (*MetricsRegistry::Default().RegisterHistogramFamily(
                             Spec("bench_latency_seconds", "seconds")))
                            ->Get({"Echo"});
  return h;
}

std::atomic<uint64_t> shared_word{0};

void BM_SharedAtomicFetchAdd(benchmark::State& state) {
  for (auto _ : state) shared_word.fetch_add(1, std::memory_order_relaxed);
}
BENCHMARK(BM_SharedAtomicFetchAdd)->Threads(1)->Threads(2)->UseRealTime();

void BM_CounterAdd(benchmark::State& state) {
  Counter* c = TheCounter();
  for (auto _ : state) c->Add(1);
}
BENCHMARK(BM_CounterAdd)->Threads(1)->Threads(2)->UseRealTime();

void BM_GaugeAdd(benchmark::State& state) {
  Gauge* g = TheGauge();
  for (auto _ : state) g->Add(1);
}
BENCHMARK(BM_GaugeAdd)->Threads(1)->Threads(2)->UseRealTime();

void BM_HistogramObserve(benchmark::State& state) {
  Histogram* h = TheHistogram();
  double v = 1e-5;
  for (auto _ : state) {
    h->Observe(v);
    v = v < 10 ? v * 1.7 : 1e-5;  // walk the buckets
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

// The read side, for scale: summing one counter over all threads.
void BM_CounterValue(benchmark::State& state) {
  Counter* c = TheCounter();
  c->Add(1);
  for (auto _ : state) benchmark::DoNotOptimize(c->Value());
}
BENCHMARK(BM_CounterValue);

}  // namespace
}  // namespace bevrpc::metrics
