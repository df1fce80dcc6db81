#include "rpc/status/status_page.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rpc/admin/text_escape.h"
#include "rpc/metrics/build_info.h"
#include "rpc/metrics/snapshot.h"
#include "rpc/status/chart_js.h"
#include "rpc/status/status_page_script.h"

namespace bevrpc::status {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Where the server counts calls to methods it does not have.
constexpr char kUnknownService[] = "__unknown__";

int LabelIndex(const metrics::FamilySnapshot& family, absl::string_view name) {
  for (size_t i = 0; i < family.label_names.size(); ++i) {
    if (family.label_names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

// Calls `fn(key, series)` for each series of `name` that has service and
// method labels.
template <typename Fn>
void ForEachMethodSeries(const metrics::RegistrySnapshot& snapshot,
                         absl::string_view name, Fn fn) {
  const metrics::FamilySnapshot* family = snapshot.Find(name);
  if (family == nullptr) return;
  const int service = LabelIndex(*family, "service");
  const int method = LabelIndex(*family, "method");
  if (service < 0 || method < 0) return;
  const int code = LabelIndex(*family, "code");
  for (const metrics::SeriesSnapshot& s : family->series) {
    fn(std::make_pair(s.label_values[service], s.label_values[method]),
       code < 0 ? absl::string_view() : absl::string_view(s.label_values[code]),
       s);
  }
}

// ---- formatting ------------------------------------------------------------

void AppendJsonNumber(double v, std::string* out) {
  if (!std::isfinite(v)) {
    out->append("null");
  } else {
    absl::StrAppendFormat(out, "%.6g", v);
  }
}

// A JSON string that is also safe inside an HTML <script> element.
void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '<': out->append("\\u003c"); break;
      case '>': out->append("\\u003e"); break;
      case '&': out->append("\\u0026"); break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

using admin::HtmlEscape;

// The page's number formats; status_page_script.h mirrors them in JS.
std::string FormatQps(double v) {
  if (!std::isfinite(v)) return "-";
  return v >= 100 ? absl::StrFormat("%.0f", v) : absl::StrFormat("%.1f", v);
}

std::string FormatRate(double v) {
  if (!std::isfinite(v)) return "-";
  return absl::StrFormat("%.2f%%", v * 100);
}

std::string FormatSeconds(double v) {
  if (!std::isfinite(v)) return "-";
  if (v < 1e-3) return absl::StrFormat("%.0f \xC2\xB5s", v * 1e6);
  if (v < 1) return absl::StrFormat("%.1f ms", v * 1e3);
  return absl::StrFormat("%.2f s", v);
}

std::string FormatUptime(absl::Duration d) {
  int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  const int64_t days = s / 86400, hours = s / 3600 % 24, minutes = s / 60 % 60;
  s %= 60;
  if (days > 0) return absl::StrFormat("%dd %dh %dm", days, hours, minutes);
  if (hours > 0) return absl::StrFormat("%dh %dm %ds", hours, minutes, s);
  if (minutes > 0) return absl::StrFormat("%dm %ds", minutes, s);
  return absl::StrFormat("%ds", s);
}

std::string FormatCount(double v, bool known) {
  return known ? absl::StrFormat("%.0f", v) : "-";
}

}  // namespace

StatusPage::StatusPage(StatusPageOptions options)
    : options_([&] {
        if (options.start_time == absl::InfinitePast()) {
          options.start_time = absl::Now();
        }
        if (options.sample_interval <= absl::ZeroDuration()) {
          options.sample_interval = absl::Seconds(1);
        }
        return options;
      }()),
      totals_capacity_(static_cast<size_t>(
                           options_.window / options_.sample_interval) +
                       1),
      points_capacity_(std::max<size_t>(
          1, static_cast<size_t>(options_.history /
                                 options_.sample_interval))) {}

StatusPage::~StatusPage() { StopSampling(); }

void StatusPage::StartSampling() {
  if (sampler_.joinable()) return;
  {
    MutexLock lock(&sampler_mu_);
    stop_sampler_ = false;
  }
  sampler_ = std::thread([this] { RunSampler(); });
}

void StatusPage::StopSampling() {
  if (!sampler_.joinable()) return;
  {
    MutexLock lock(&sampler_mu_);
    stop_sampler_ = true;
    sampler_cv_.SignalAll();
  }
  sampler_.join();
}

void StatusPage::RunSampler() {
  for (;;) {
    Sample(absl::Now());
    MutexLock lock(&sampler_mu_);
    if (sampler_cv_.WaitUntil(
            &sampler_mu_, options_.sample_interval,
            [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_sampler_; })) {
      return;
    }
  }
}

void StatusPage::Sample(absl::Time now) {
  // Read the registry before taking the lock: Collect() runs callbacks.
  const metrics::RegistrySnapshot snapshot = options_.registry->Collect();
  struct Read {
    Totals totals;
    double in_flight = 0;
    bool has_in_flight = false;
  };
  std::map<MethodKey, Read> read;
  ForEachMethodSeries(snapshot, "bevrpc_server_handled_total",
                      [&](MethodKey key, absl::string_view code,
                          const metrics::SeriesSnapshot& s) {
                        Totals& t = read[std::move(key)].totals;
                        t.calls += s.value;
                        if (code != "OK") t.errors += s.value;
                      });
  ForEachMethodSeries(snapshot, "bevrpc_server_handling_seconds",
                      [&](MethodKey key, absl::string_view,
                          const metrics::SeriesSnapshot& s) {
                        read[std::move(key)].totals.latency = s.histogram;
                      });
  ForEachMethodSeries(snapshot, "bevrpc_server_in_flight",
                      [&](MethodKey key, absl::string_view,
                          const metrics::SeriesSnapshot& s) {
                        Read& r = read[std::move(key)];
                        r.in_flight += s.value;
                        r.has_in_flight = true;
                      });
  double connections = 0;
  const metrics::FamilySnapshot* conns =
      snapshot.Find("bevrpc_server_connections");
  if (conns != nullptr) {
    for (const metrics::SeriesSnapshot& s : conns->series) connections += s.value;
  }

  MutexLock lock(&mu_);
  if (now <= last_sample_) return;  // a clock that went backwards
  has_connections_ = conns != nullptr;
  connections_ = connections;
  size_t not_shown = 0;
  for (auto& [key, r] : read) {
    auto it = methods_.find(key);
    if (it == methods_.end()) {
      if (methods_.size() >= options_.max_methods) {
        ++not_shown;
        continue;
      }
      it = methods_
               .emplace(key, std::make_unique<MethodState>(totals_capacity_,
                                                           points_capacity_))
               .first;
      // Its series did not exist at the previous sample: it was zero then.
      if (last_sample_ != absl::InfinitePast()) {
        it->second->totals.Push(last_sample_, Totals{});
      }
    }
    MethodState& m = *it->second;
    if (const auto* prev = m.totals.Newest()) {
      const Totals& before = prev->value;
      const double seconds = absl::ToDoubleSeconds(now - prev->time);
      const double calls = std::max(0.0, r.totals.calls - before.calls);
      const double errors = std::max(0.0, r.totals.errors - before.errors);
      Point p;
      p.qps = calls / seconds;
      p.error_rate = calls > 0 ? std::min(1.0, errors / calls) : 0;
      const metrics::HistogramSnapshot latency =
          r.totals.latency.Minus(before.latency);
      p.p50 = latency.Quantile(0.5);
      p.p99 = latency.Quantile(0.99);
      m.points.Push(now, p);
    }
    m.totals.Push(now, std::move(r.totals));
    m.in_flight = r.in_flight;
    m.has_in_flight = r.has_in_flight;
  }
  methods_not_shown_ = not_shown;
  last_sample_ = now;
}

bool StatusPage::EverCalled(const MethodState& state) {
  const auto* newest = state.totals.Newest();
  return newest != nullptr && newest->value.calls > 0;
}

StatusPage::Current StatusPage::CurrentOf(const MethodState& state,
                                          absl::Duration window) {
  Current c;
  const auto* newest = state.totals.Newest();
  if (newest == nullptr) return c;
  const auto* then = state.totals.AtOrBefore(newest->time - window);
  if (then == nullptr) then = &state.totals.at(0);
  if (then == newest) return c;
  const double seconds = absl::ToDoubleSeconds(newest->time - then->time);
  c.calls = std::max(0.0, newest->value.calls - then->value.calls);
  c.errors = std::max(0.0, newest->value.errors - then->value.errors);
  c.qps = c.calls / seconds;
  c.error_rate = c.calls > 0 ? std::min(1.0, c.errors / c.calls) : 0;
  const metrics::HistogramSnapshot latency =
      newest->value.latency.Minus(then->value.latency);
  c.p50 = latency.Quantile(0.5);
  c.p99 = latency.Quantile(0.99);
  c.valid = true;
  return c;
}

size_t StatusPage::num_methods() const {
  MutexLock lock(&mu_);
  return methods_.size();
}

size_t StatusPage::methods_not_shown() const {
  MutexLock lock(&mu_);
  return methods_not_shown_;
}

admin::HttpResponse StatusPage::Handle(const admin::HttpRequest& request) const {
  admin::HttpResponse response;
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.body = absl::StrCat(request.method, " not allowed on ",
                                 request.path, "; use GET\n");
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  response.headers.emplace_back("Cache-Control", "no-store");
  const absl::Time now = absl::Now();
  if (request.WantsJson()) {
    auto history = request.query.find("history");
    const bool with_history =
        history == request.query.end() || history->second != "0";
    response.content_type = "application/json";
    response.body = RenderJson(now, with_history);
  } else {
    response.content_type = "text/html; charset=utf-8";
    response.body = RenderHtml(now);
  }
  return response;
}

std::string StatusPage::RenderJson(absl::Time now, bool with_history) const {
  MutexLock lock(&mu_);
  std::string out;
  AppendJsonLocked(now, with_history, &out);
  return out;
}

void StatusPage::AppendJsonLocked(absl::Time now, bool with_history,
                                  std::string* json) const {
  std::string& out = *json;
  out.append("{\"title\":");
  AppendJsonString(options_.title, &out);
  out.append(",\"version\":");
  AppendJsonString(kBevrpcVersion, &out);
  out.append(",\"uptime_seconds\":");
  AppendJsonNumber(std::floor(absl::ToDoubleSeconds(now - options_.start_time)),
                   &out);
  out.append(",\"connections\":");
  AppendJsonNumber(has_connections_ ? connections_ : kNaN, &out);
  double in_flight = 0;
  bool has_in_flight = false;
  for (const auto& [key, m] : methods_) {
    in_flight += m->in_flight;
    has_in_flight |= m->has_in_flight;
  }
  out.append(",\"in_flight\":");
  AppendJsonNumber(has_in_flight ? in_flight : kNaN, &out);
  out.append(",\"sample_interval_seconds\":");
  AppendJsonNumber(absl::ToDoubleSeconds(options_.sample_interval), &out);
  out.append(",\"window_seconds\":");
  AppendJsonNumber(absl::ToDoubleSeconds(options_.window), &out);
  absl::StrAppend(&out, ",\"methods_not_shown\":", methods_not_shown_,
                  ",\"methods\":[");
  bool first = true;
  for (const auto& [key, m] : methods_) {
    if (!first) out.push_back(',');
    first = false;
    const Current c = CurrentOf(*m, options_.window);
    out.append("{\"service\":");
    AppendJsonString(key.first, &out);
    out.append(",\"method\":");
    AppendJsonString(key.second, &out);
    const std::pair<const char*, double> fields[] = {
        {"qps", c.valid ? c.qps : kNaN},
        {"error_rate", c.valid ? c.error_rate : kNaN},
        {"p50_seconds", c.valid ? c.p50 : kNaN},
        {"p99_seconds", c.valid ? c.p99 : kNaN},
        {"calls", c.valid ? c.calls : kNaN},
        {"errors", c.valid ? c.errors : kNaN},
        {"in_flight", m->has_in_flight ? m->in_flight : kNaN},
    };
    for (const auto& [name, value] : fields) {
      absl::StrAppend(&out, ",\"", name, "\":");
      AppendJsonNumber(value, &out);
    }
    if (with_history) {
      out.append(",\"history\":{");
      const std::pair<const char*, double Point::*> series[] = {
          {"qps", &Point::qps},
          {"error_rate", &Point::error_rate},
          {"p50_seconds", &Point::p50},
          {"p99_seconds", &Point::p99},
      };
      out.append("\"t\":[");
      for (size_t i = 0; i < m->points.size(); ++i) {
        if (i > 0) out.push_back(',');
        absl::StrAppendFormat(
            &out, "%.3f",
            static_cast<double>(absl::ToUnixMillis(m->points.at(i).time)) /
                1000);
      }
      out.push_back(']');
      for (const auto& [name, field] : series) {
        absl::StrAppend(&out, ",\"", name, "\":[");
        for (size_t i = 0; i < m->points.size(); ++i) {
          if (i > 0) out.push_back(',');
          AppendJsonNumber(m->points.at(i).value.*field, &out);
        }
        out.push_back(']');
      }
      out.push_back('}');
    }
    out.push_back('}');
  }
  out.append("]}\n");
}

std::string StatusPage::RenderHtml(absl::Time now) const {
  MutexLock lock(&mu_);
  // The charts' data, inlined so they draw without a request of their own.
  std::string data;
  AppendJsonLocked(now, /*with_history=*/true, &data);
  const std::string title = HtmlEscape(options_.title);
  double in_flight = 0;
  bool has_in_flight = false;
  for (const auto& [key, m] : methods_) {
    in_flight += m->in_flight;
    has_in_flight |= m->has_in_flight;
  }
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>",
      title, " - status</title><style>", kStatusPageCss,
      "</style></head>\n<body data-rendered=\"0\">\n<h1>", title,
      "</h1>\n<p class=\"summary\">bevrpc ", kBevrpcVersion,
      " &middot; up <span id=\"bevrpc-uptime\">",
      FormatUptime(now - options_.start_time),
      "</span> &middot; <span id=\"bevrpc-connections\">",
      FormatCount(connections_, has_connections_),
      "</span> connections &middot; <span id=\"bevrpc-in-flight\">",
      FormatCount(in_flight, has_in_flight),
      "</span> calls in flight &middot; <a href=\"?format=json\">JSON</a></p>\n");
  absl::StrAppend(
      &out, "<table id=\"bevrpc-methods\"><thead><tr><th>Service</th>"
            "<th>Method</th><th>QPS</th><th>Error rate</th><th>p50</th>"
            "<th>p99</th><th>In flight</th><th>Calls</th><th>Errors</th>"
            "</tr></thead>\n<tbody>\n");
  for (const auto& [key, m] : methods_) {
    if (key.first == kUnknownService && !EverCalled(*m)) continue;
    const Current c = CurrentOf(*m, options_.window);
    const std::string id = HtmlEscape(absl::StrCat(key.first, "/", key.second));
    absl::StrAppend(
        &out, "<tr data-method=\"", id, "\"><td>", HtmlEscape(key.first),
        "</td><td>", HtmlEscape(key.second), "</td><td class=\"qps\">",
        c.valid ? FormatQps(c.qps) : "-", "</td><td class=\"error_rate\">",
        c.valid ? FormatRate(c.error_rate) : "-", "</td><td class=\"p50\">",
        c.valid ? FormatSeconds(c.p50) : "-", "</td><td class=\"p99\">",
        c.valid ? FormatSeconds(c.p99) : "-", "</td><td class=\"in_flight\">",
        FormatCount(m->in_flight, m->has_in_flight), "</td><td class=\"calls\">",
        FormatCount(c.calls, c.valid), "</td><td class=\"errors\">",
        FormatCount(c.errors, c.valid), "</td></tr>\n");
  }
  if (methods_.empty()) {
    out.append("<tr><td colspan=\"9\">No calls yet.</td></tr>\n");
  }
  absl::StrAppend(
      &out, "</tbody></table>\n<p class=\"note\">QPS, error rate, p50 and "
            "p99 over the last ",
      absl::FormatDuration(options_.window), "; charts: the last ",
      absl::FormatDuration(options_.history), ", one point per ",
      absl::FormatDuration(options_.sample_interval), ".");
  if (methods_not_shown_ > 0) {
    absl::StrAppend(&out, " ", methods_not_shown_,
                    " more methods not shown (at most ", options_.max_methods,
                    ").");
  }
  out.append("</p>\n<section id=\"bevrpc-charts\" hidden>\n");
  size_t index = 0;
  for (const auto& [key, m] : methods_) {
    // Charts only for methods that were ever called: a server lists every
    // registered method (and __unknown__), most of them idle.
    if (!EverCalled(*m)) continue;
    const std::string id = HtmlEscape(absl::StrCat(key.first, "/", key.second));
    absl::StrAppend(&out, "<div class=\"bevrpc-method\"><h2>", id, "</h2>");
    for (const char* kind : {"traffic", "latency"}) {
      absl::StrAppend(&out, "<div class=\"bevrpc-chart-box\"><canvas "
                            "class=\"bevrpc-chart\" id=\"bevrpc-chart-",
                      index, "-", kind, "\" data-method=\"", id,
                      "\" data-kind=\"", kind, "\"></canvas></div>");
    }
    out.append("</div>\n");
    ++index;
  }
  absl::StrAppend(
      &out, "</section>\n<noscript><p class=\"note\">Charts need JavaScript; "
            "the table above is complete without it.</p></noscript>\n"
            "<script src=\"",
      ChartJsUrl(), "\"></script>\n<script id=\"bevrpc-status-data\" "
                    "type=\"application/json\">",
      data, "</script>\n<script>", kStatusPageScript,
      "</script>\n</body></html>\n");
  return out;
}

}  // namespace bevrpc::status
