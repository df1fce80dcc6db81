#include "rpc/internal/admin_pages.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rpc/admin/http_response_writer.h"
#include "rpc/admin/text_escape.h"
#include "rpc/internal/server_session.h"
#include "rpc/metrics/exposition.h"

namespace bevrpc::internal {
namespace {

using admin::HttpRequest;
using admin::HttpResponse;
using admin::JsonString;

// One option: its name, its value as text, and as a JSON value.
struct OptionField {
  std::string name;
  std::string text;
  std::string json;
};

// Integers print exactly; alpha (a double) in six digits.
template <typename T>
OptionField Num(std::string name, T value) {
  std::string v = absl::StrCat(value);
  return {std::move(name), v, v};
}
OptionField Bool(std::string name, bool value) {
  std::string v = value ? "true" : "false";
  return {std::move(name), v, v};
}
OptionField Str(std::string name, const std::string& value) {
  return {std::move(name), value, JsonString(value)};
}
OptionField Dur(std::string name, absl::Duration value) {
  std::string v = absl::FormatDuration(value);
  return {std::move(name), v, JsonString(v)};
}

const char* HttpModeName(HttpMode mode) {
  switch (mode) {
    case HttpMode::kSamePort:
      return "same_port";
    case HttpMode::kSeparateAddress:
      return "separate_address";
    case HttpMode::kOff:
      return "off";
  }
  return "unknown";
}

std::string RateText(uint64_t bytes_per_sec) {
  return bytes_per_sec == 0 ? "unlimited"
                            : absl::StrCat(bytes_per_sec, " B/s");
}

std::vector<OptionField> DescribeOptions(const ServerOptions& o) {
  std::vector<OptionField> f;
  f.push_back(Str("listen_address", o.listen_address));
  f.push_back(Num("io_threads", o.io_threads));
  f.push_back(Bool("borrowed_loops", o.loops != nullptr));
  f.push_back(Num("worker_threads", o.worker_threads));
  f.push_back(Num("max_stream_threads", o.max_stream_threads));
  f.push_back(Num("max_queued_calls", o.max_queued_calls));
  f.push_back(Num("max_connection_memory_bytes", o.max_connection_memory_bytes));
  f.push_back(Num("max_server_memory_bytes", o.max_server_memory_bytes));
  f.push_back(Num("limits.max_message_bytes", o.limits.max_message_bytes));
  f.push_back(Num("limits.max_meta_bytes", o.limits.max_meta_bytes));
  f.push_back(Num("limits.max_method_bytes", o.limits.max_method_bytes));
  f.push_back(Num("limits.max_metadata_bytes", o.limits.max_metadata_bytes));
  f.push_back(Num("max_connections", o.max_connections));
  f.push_back(Num("max_concurrent_calls_per_connection",
                  o.max_concurrent_calls_per_connection));
  f.push_back(Num("max_concurrent_calls", o.max_concurrent_calls));
  for (const auto& [method, limit] : o.max_concurrent_calls_per_method) {
    f.push_back(Num(absl::StrCat("max_concurrent_calls_per_method[", method,
                                 "]"),
                    limit));
  }
  const AdaptiveConcurrency& a = o.adaptive_concurrency;
  f.push_back(Bool("adaptive_concurrency.enabled", a.enabled));
  if (a.enabled) {
    f.push_back(Dur("adaptive_concurrency.window", a.window));
    f.push_back(Num("adaptive_concurrency.min_calls_per_window",
                    a.min_calls_per_window));
    f.push_back(Num("adaptive_concurrency.alpha", a.alpha));
    f.push_back(Num("adaptive_concurrency.initial_limit", a.initial_limit));
    f.push_back(Num("adaptive_concurrency.min_limit", a.min_limit));
    f.push_back(Num("adaptive_concurrency.max_limit", a.max_limit));
    f.push_back(Dur("adaptive_concurrency.remeasure_interval",
                    a.remeasure_interval));
  }
  f.push_back(Dur("overload_retry_pushback", o.overload_retry_pushback));
  f.push_back(Dur("early_cancel_time", o.early_cancel_time));
  f.push_back(Num("max_early_cancels_per_second",
                  o.max_early_cancels_per_second));
  f.push_back(Num("early_cancel_burst", o.early_cancel_burst));
  f.push_back(Dur("idle_timeout", o.idle_timeout));
  f.push_back(Dur("keepalive_time", o.keepalive_time));
  f.push_back(Dur("keepalive_timeout", o.keepalive_timeout));
  f.push_back(Dur("min_ping_interval", o.min_ping_interval));
  f.push_back(Num("max_ping_strikes", o.max_ping_strikes));
  f.push_back(Dur("frame_timeout", o.frame_timeout));
  f.push_back(Num("stream_window_bytes", o.stream_window_bytes));
  f.push_back(Num("stream_write_buffer_bytes", o.stream_write_buffer_bytes));
  f.push_back(Num("per_connection_rate_limit.read_bytes_per_sec",
                  o.per_connection_rate_limit.read_bytes_per_sec));
  f.push_back(Num("per_connection_rate_limit.write_bytes_per_sec",
                  o.per_connection_rate_limit.write_bytes_per_sec));
  f.push_back(Num("server_rate_limit.read_bytes_per_sec",
                  o.server_rate_limit.read_bytes_per_sec));
  f.push_back(Num("server_rate_limit.write_bytes_per_sec",
                  o.server_rate_limit.write_bytes_per_sec));
  f.push_back(Num("connection.read_buffer_bytes",
                  o.connection.read_buffer_bytes));
  f.push_back(Num("connection.write_high_watermark",
                  o.connection.write_high_watermark));
  f.push_back(Num("connection.write_low_watermark",
                  o.connection.write_low_watermark));
  f.push_back(Dur("connection.linger", o.connection.linger));
  f.push_back(Bool("reuse_port", o.reuse_port));
  f.push_back(Str("register_target", o.register_target));
  f.push_back(Str("advertise", o.advertise));
  f.push_back(Str("http", HttpModeName(o.http)));
  f.push_back(Str("admin_address", o.admin_address));
  f.push_back(Num("http_limits.max_head_bytes", o.http_limits.max_head_bytes));
  f.push_back(Num("http_limits.max_headers", o.http_limits.max_headers));
  f.push_back(Num("http_limits.max_body_bytes", o.http_limits.max_body_bytes));
  f.push_back(Dur("http_limits.request_timeout",
                  o.http_limits.request_timeout));
  f.push_back(Dur("http_limits.idle_timeout", o.http_limits.idle_timeout));
  f.push_back(Num("http_limits.max_connections",
                  o.http_limits.max_connections));
  return f;
}

HttpResponse Json(std::string body) {
  HttpResponse response;
  response.content_type = "application/json";
  response.body = std::move(body);
  return response;
}

HttpResponse MetricsPage(const ServerShared* shared,
                         const HttpRequest& request) {
  HttpResponse response;
  metrics::MetricsRegistry* registry = shared->options.metrics_registry;
  if (request.WantsJson()) {
    response.content_type = "application/json";
    if (registry != nullptr) registry->RenderJson(&response.body);
  } else {
    response.content_type = metrics::kPrometheusContentType;
    if (registry != nullptr) registry->RenderPrometheus(&response.body);
  }
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

HttpResponse HealthPage(const std::function<bool()>& draining,
                        const HttpRequest& request) {
  const bool serving = !draining();
  const char* status = serving ? "SERVING" : "NOT_SERVING";
  HttpResponse response =
      request.WantsJson()
          ? Json(absl::StrCat("{\"status\":\"", status, "\",\"draining\":",
                              serving ? "false" : "true", "}\n"))
          : admin::TextResponse(200, serving ? "SERVING"
                                             : "NOT_SERVING (draining)");
  response.status = serving ? 200 : 503;
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace

std::string RenderOptions(const ServerOptions& options, bool json) {
  std::string out = json ? "{" : "";
  bool first = true;
  for (const OptionField& field : DescribeOptions(options)) {
    if (json) {
      absl::StrAppend(&out, first ? "" : ",", JsonString(field.name), ":",
                      field.json);
    } else {
      absl::StrAppend(&out, field.name, " = ", field.text, "\n");
    }
    first = false;
  }
  if (json) out += "}\n";
  return out;
}

std::string RenderConnections(const std::vector<ConnectionTable::Row>& rows,
                              const ServerOptions& options, absl::Time now,
                              bool json) {
  const std::string per_connection = absl::StrCat(
      "read ", RateText(options.per_connection_rate_limit.read_bytes_per_sec),
      ", write ",
      RateText(options.per_connection_rate_limit.write_bytes_per_sec));
  const std::string server_wide = absl::StrCat(
      "read ", RateText(options.server_rate_limit.read_bytes_per_sec),
      ", write ", RateText(options.server_rate_limit.write_bytes_per_sec));
  std::string out;
  if (json) {
    absl::StrAppend(&out, "{\"count\":", rows.size(),
                    ",\"server_rate_limit\":", JsonString(server_wide),
                    ",\"connections\":[");
  } else {
    absl::StrAppend(&out, rows.size(), " open connection(s)\n",
                    "server-wide rate limit: ", server_wide, "\n\n");
    absl::StrAppendFormat(&out, "%-47s %-8s %10s %14s %14s %6s %9s  %s\n",
                          "peer", "protocol", "age_s", "bytes_in",
                          "bytes_out", "calls", "requests", "rate_limit");
  }
  bool first = true;
  for (const ConnectionTable::Row& row : rows) {
    const double age = absl::ToDoubleSeconds(now - row.opened_at);
    const char* protocol = ConnectionProtocolName(row.protocol);
    if (json) {
      absl::StrAppend(
          &out, first ? "" : ",", "{\"peer\":", JsonString(row.peer),
          ",\"protocol\":\"", protocol, "\",\"age_seconds\":",
          absl::StrFormat("%.3f", age), ",\"bytes_in\":", row.bytes_in,
          ",\"bytes_out\":", row.bytes_out, ",\"calls_open\":",
          row.calls_open, ",\"http_requests\":", row.http_requests,
          ",\"rate_limit\":", JsonString(per_connection), "}");
    } else {
      absl::StrAppendFormat(&out, "%-47s %-8s %10.1f %14d %14d %6d %9d  %s\n",
                            row.peer, protocol, age, row.bytes_in,
                            row.bytes_out, row.calls_open, row.http_requests,
                            per_connection);
    }
    first = false;
  }
  if (json) out += "]}\n";
  return out;
}

absl::Status AddBuiltinPages(ServerShared* shared,
                             std::function<bool()> draining) {
  admin::PageRegistry& pages = shared->pages;
  absl::Status s = pages.Add(
      "/metrics", "Metrics (Prometheus text 0.0.4; ?format=json)",
      [shared](const HttpRequest& r) { return MetricsPage(shared, r); });
  if (!s.ok()) return s;
  s = pages.Add("/health", "Serving status (503 while draining)",
                [draining](const HttpRequest& r) {
                  return HealthPage(draining, r);
                });
  if (!s.ok()) return s;
  s = pages.Add("/options", "Effective server options",
                [shared](const HttpRequest& r) {
                  const bool json = r.WantsJson();
                  HttpResponse response;
                  if (json) response.content_type = "application/json";
                  response.body = RenderOptions(shared->options, json);
                  return response;
                });
  if (!s.ok()) return s;
  return pages.Add(
      "/connections", "Open connections: peer, protocol, age, bytes, calls",
      [shared](const HttpRequest& r) {
        const bool json = r.WantsJson();
        HttpResponse response;
        if (json) response.content_type = "application/json";
        response.body =
            RenderConnections(shared->connection_table.Snapshot(),
                              shared->options, absl::Now(), json);
        response.headers.emplace_back("Cache-Control", "no-store");
        return response;
      });
}

}  // namespace bevrpc::internal
