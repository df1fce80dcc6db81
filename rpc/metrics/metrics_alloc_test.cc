// Add(), Set() and Observe() allocate nothing once the thread has touched
// the series' block.
#include <thread>

#include "gtest/gtest.h"
#include "rpc/metrics/metrics.h"
#include "transport/testing/alloc_counter.h"

namespace bevrpc::metrics {
namespace {

using transport::testing::ThreadAllocations;

MetricSpec Spec(std::string name, std::string unit = "") {
  MetricSpec spec;
  spec.name = std::move(name);
  spec.unit = std::move(unit);
  spec.label_names = {"method"};
  return spec;
}

TEST(MetricsAllocTest, HotPathAllocatesNothingAfterFirstTouch) {
  MetricsRegistry r;
  Counter* c = (*r.RegisterCounterFamily(Spec("calls")))->Get({"Echo"});
  Gauge* g = (*r.RegisterGaugeFamily(Spec("in_flight")))->Get({"Echo"});
  Histogram* h =
      (*r.RegisterHistogramFamily(Spec("latency_seconds", "seconds")))
          ->Get({"Echo"});
  std::thread([&] {
    const int64_t start = ThreadAllocations();
    c->Increment();  // first touch: this thread's cells
    const int64_t first = ThreadAllocations() - start;
    EXPECT_GT(first, 0);
    g->Increment();
    h->Observe(0.001);
    const int64_t before = ThreadAllocations();
    for (int i = 0; i < 100000; ++i) {
      c->Add(3);
      g->Add(1);
      g->Sub(1);
      g->Set(i);
      h->Observe(i * 1e-6);
      h->ObserveDuration(absl::Microseconds(i));
    }
    EXPECT_EQ(ThreadAllocations() - before, 0);
  }).join();
  EXPECT_EQ(c->Value(), 1u + 3 * 100000);
  EXPECT_EQ(h->Snapshot().count, 1u + 2 * 100000);
}

}  // namespace
}  // namespace bevrpc::metrics
