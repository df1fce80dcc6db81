#include "rpc/metrics/snapshot.h"

#include <algorithm>

namespace bevrpc::metrics {

absl::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

const SeriesSnapshot* FamilySnapshot::FindSeries(
    absl::Span<const std::string> label_values) const {
  auto it = std::lower_bound(
      series.begin(), series.end(), label_values,
      [](const SeriesSnapshot& s, absl::Span<const std::string> labels) {
        return absl::MakeConstSpan(s.label_values) < labels;
      });
  if (it == series.end() || absl::MakeConstSpan(it->label_values) != label_values) {
    return nullptr;
  }
  return &*it;
}

const FamilySnapshot* RegistrySnapshot::Find(absl::string_view name) const {
  auto it = std::lower_bound(
      families.begin(), families.end(), name,
      [](const FamilySnapshot& f, absl::string_view n) { return f.name < n; });
  if (it == families.end() || it->name != name) return nullptr;
  return &*it;
}

double Rate(const SeriesSnapshot& later, const SeriesSnapshot& earlier,
            absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  // A histogram's rate is that of its count.
  const double now = later.histogram.layout != nullptr
                         ? static_cast<double>(later.histogram.count)
                         : later.value;
  const double then = earlier.histogram.layout != nullptr
                          ? static_cast<double>(earlier.histogram.count)
                          : earlier.value;
  if (seconds <= 0 || now < then) return 0;
  return (now - then) / seconds;
}

}  // namespace bevrpc::metrics
