#include "rpc/metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "rpc/metrics/metrics.h"

namespace bevrpc::metrics {
namespace {

void AppendEscaped(absl::string_view s, bool quotes, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && quotes) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// {a="x",b="y"} with an optional extra label (le); nothing for no labels.
void AppendLabels(const FamilySnapshot& family, const SeriesSnapshot& series,
                  absl::string_view extra_name, absl::string_view extra_value,
                  std::string* out) {
  const size_t n = family.label_names.size();
  if (n == 0 && extra_name.empty()) return;
  out->push_back('{');
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, family.label_names[i], "=\"");
    AppendEscaped(series.label_values[i], true, out);
    out->push_back('"');
  }
  if (!extra_name.empty()) {
    if (n > 0) out->push_back(',');
    absl::StrAppend(out, extra_name, "=\"", extra_value, "\"");
  }
  out->push_back('}');
}

void AppendHistogram(const FamilySnapshot& family, const SeriesSnapshot& s,
                     std::string* out) {
  const HistogramSnapshot& h = s.histogram;
  if (h.layout == nullptr) return;
  uint64_t cumulative = 0;
  int next = 0;
  for (int bucket : h.layout->exported_buckets()) {
    for (; next <= bucket; ++next) cumulative += h.counts[next];
    absl::StrAppend(out, family.name, "_bucket");
    AppendLabels(family, s, "le",
                 FormatPrometheusValue(h.layout->UpperBound(bucket)), out);
    absl::StrAppend(out, " ", cumulative, "\n");
  }
  absl::StrAppend(out, family.name, "_sum");
  AppendLabels(family, s, "", "", out);
  absl::StrAppend(out, " ", FormatPrometheusValue(h.sum), "\n");
  absl::StrAppend(out, family.name, "_count");
  AppendLabels(family, s, "", "", out);
  absl::StrAppend(out, " ", h.count, "\n");
}

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

void AppendJsonNumber(double v, std::string* out) {
  if (std::isfinite(v)) {
    out->append(FormatPrometheusValue(v));
  } else {
    absl::StrAppend(out, "\"", FormatPrometheusValue(v), "\"");
  }
}

void AppendJsonQuantile(const char* key, const HistogramSnapshot& h, double q,
                        std::string* out) {
  absl::StrAppend(out, ",\"", key, "\":");
  if (h.count == 0) {
    out->append("null");
  } else {
    AppendJsonNumber(h.Quantile(q), out);
  }
}

void AppendJsonHistogram(const HistogramSnapshot& h, std::string* out) {
  absl::StrAppend(out, ",\"count\":", h.count, ",\"sum\":");
  AppendJsonNumber(h.sum, out);
  out->append(",\"mean\":");
  if (h.count == 0) {
    out->append("null");
  } else {
    AppendJsonNumber(h.Mean(), out);
  }
  AppendJsonQuantile("p50", h, 0.5, out);
  AppendJsonQuantile("p90", h, 0.9, out);
  AppendJsonQuantile("p99", h, 0.99, out);
  out->append(",\"buckets\":[");
  if (h.layout != nullptr) {
    uint64_t cumulative = 0;
    int next = 0;
    bool first = true;
    for (int bucket : h.layout->exported_buckets()) {
      for (; next <= bucket; ++next) cumulative += h.counts[next];
      if (!first) out->push_back(',');
      first = false;
      out->append("{\"le\":");
      AppendJsonNumber(h.layout->UpperBound(bucket), out);
      absl::StrAppend(out, ",\"count\":", cumulative, "}");
    }
  }
  out->push_back(']');
}

void AppendJsonSeries(const FamilySnapshot& family, const SeriesSnapshot& s,
                      std::string* out) {
  out->append("{\"labels\":{");
  for (size_t i = 0; i < family.label_names.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(family.label_names[i], out);
    out->push_back(':');
    AppendJsonString(s.label_values[i], out);
  }
  out->push_back('}');
  if (family.type == MetricType::kHistogram) {
    AppendJsonHistogram(s.histogram, out);
  } else {
    out->append(",\"value\":");
    AppendJsonNumber(s.value, out);
  }
  out->push_back('}');
}

void AppendJsonFamily(const FamilySnapshot& family, std::string* out) {
  out->append("{\"name\":");
  AppendJsonString(family.name, out);
  absl::StrAppend(out, ",\"type\":\"", MetricTypeName(family.type),
                  "\",\"help\":");
  AppendJsonString(family.help, out);
  out->append(",\"unit\":");
  AppendJsonString(family.unit, out);
  out->append(",\"labels\":[");
  for (size_t i = 0; i < family.label_names.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonString(family.label_names[i], out);
  }
  out->append("],\"series\":[");
  for (size_t i = 0; i < family.series.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonSeries(family, family.series[i], out);
  }
  out->append("]}");
}

}  // namespace

std::string FormatPrometheusValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 9007199254740992.0) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[64];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

void RenderPrometheus(const RegistrySnapshot& snapshot, std::string* out) {
  for (const FamilySnapshot& family : snapshot.families) {
    if (!family.help.empty()) {
      absl::StrAppend(out, "# HELP ", family.name, " ");
      AppendEscaped(family.help, false, out);
      out->push_back('\n');
    }
    absl::StrAppend(out, "# TYPE ", family.name, " ",
                    MetricTypeName(family.type), "\n");
    for (const SeriesSnapshot& s : family.series) {
      if (family.type == MetricType::kHistogram) {
        AppendHistogram(family, s, out);
        continue;
      }
      out->append(family.name);
      AppendLabels(family, s, "", "", out);
      absl::StrAppend(out, " ", FormatPrometheusValue(s.value), "\n");
    }
  }
}

void RenderJson(const RegistrySnapshot& snapshot, std::string* out) {
  out->append("{\"time\":");
  AppendJsonNumber(absl::ToDoubleSeconds(snapshot.time - absl::UnixEpoch()),
                   out);
  out->append(",\"families\":[");
  for (size_t i = 0; i < snapshot.families.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendJsonFamily(snapshot.families[i], out);
  }
  out->append("]}");
}

void MetricsRegistry::RenderPrometheus(std::string* out) const {
  metrics::RenderPrometheus(Collect(), out);
}

void MetricsRegistry::RenderJson(std::string* out) const {
  metrics::RenderJson(Collect(), out);
}

}  // namespace bevrpc::metrics
