// Point-in-time values of a MetricsRegistry: what the exposition formats
// render and what live pages keep to compute rates and windowed quantiles.
//
//   RegistrySnapshot now = registry.Collect();
//   const FamilySnapshot* handled = now.Find("bevrpc_server_handled_total");
//   for (const SeriesSnapshot& s : handled->series) {
//     double qps = Rate(s, *earlier.Find(...)->FindSeries(s.label_values),
//                       now.time - earlier.time);
//   }
//
// Plain values; not thread-safe to mutate concurrently.
#ifndef BEVRPC_RPC_METRICS_SNAPSHOT_H_
#define BEVRPC_RPC_METRICS_SNAPSHOT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "rpc/metrics/histogram_layout.h"

namespace bevrpc::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// "counter", "gauge" or "histogram" (the exposition's TYPE word).
absl::string_view MetricTypeName(MetricType type);

struct SeriesSnapshot {
  // One per FamilySnapshot::label_names, in that order.
  std::vector<std::string> label_values;
  // Counters and gauges.
  double value = 0;
  // Histograms only.
  HistogramSnapshot histogram;
};

struct FamilySnapshot {
  MetricType type = MetricType::kCounter;
  // As exported: counters end in "_total"; a histogram's samples are
  // name + "_bucket", "_sum", "_count".
  std::string name;
  std::string help;
  std::string unit;
  std::vector<std::string> label_names;
  // Sorted by label values.
  std::vector<SeriesSnapshot> series;

  // The series with exactly these label values, or nullptr.
  const SeriesSnapshot* FindSeries(
      absl::Span<const std::string> label_values) const;
};

struct RegistrySnapshot {
  absl::Time time;
  // Sorted by name; families without series are left out.
  std::vector<FamilySnapshot> families;

  // The family with this exported name, or nullptr.
  const FamilySnapshot* Find(absl::string_view name) const;
};

// Per-second rate of a counter (or of a histogram's count) between two snapshots of the same series
// (`later` taken `elapsed` after `earlier`); 0 when elapsed <= 0 or the
// value went down (a restart).
double Rate(const SeriesSnapshot& later, const SeriesSnapshot& earlier,
            absl::Duration elapsed);

}  // namespace bevrpc::metrics

#endif  // BEVRPC_RPC_METRICS_SNAPSHOT_H_
