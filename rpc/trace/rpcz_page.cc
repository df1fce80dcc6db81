#include "rpc/trace/rpcz_page.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "rpc/admin/text_escape.h"

namespace bevrpc::trace {
namespace {

using admin::HtmlEscape;
using admin::JsonString;

std::string Micros(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return "null";
  return absl::StrCat(absl::ToInt64Microseconds(d));
}

std::string HumanDuration(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return "running";
  return absl::StrFormat("%.3f ms", absl::ToDoubleMilliseconds(d));
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

bool IsZero(const SpanId& id) { return id == SpanId{}; }

std::string ParentHex(const SpanId& id) {
  return IsZero(id) ? std::string() : ToHex(id);
}

std::string Code(absl::StatusCode code) {
  return absl::StatusCodeToString(code);
}

std::string RenderJson(const RpczStore& store,
                       const std::vector<RpczSample>& samples) {
  std::string out = absl::StrCat(
      "{\"enabled\":", store.enabled() ? "true" : "false",
      ",\"recorded\":", store.recorded(), ",\"held\":", store.size(),
      ",\"samples\":[");
  bool first = true;
  for (const RpczSample& s : samples) {
    if (!first) out += ',';
    first = false;
    absl::StrAppend(
        &out, "{\"trace_id\":\"", ToHex(s.trace_id), "\",\"span_id\":\"",
        ToHex(s.span_id), "\",\"parent_span_id\":\"", ParentHex(s.parent_span_id),
        "\",\"method\":", JsonString(s.method), ",\"peer\":",
        JsonString(s.peer), ",\"start\":\"", Rfc3339(s.start),
        "\",\"queued_us\":", Micros(s.queued),
        ",\"handler_us\":", Micros(s.handler), ",\"total_us\":",
        Micros(s.total), ",\"request_bytes\":", s.request_bytes,
        ",\"response_bytes\":", s.response_bytes, ",\"code\":\"",
        Code(s.code), "\",\"message\":", JsonString(s.message),
        ",\"sampled\":", s.sampled ? "true" : "false", ",\"downstream\":[");
    bool first_down = true;
    for (const RpczDownstreamCall& d : s.downstream) {
      if (!first_down) out += ',';
      first_down = false;
      absl::StrAppend(&out, "{\"method\":", JsonString(d.method),
                      ",\"target\":", JsonString(d.target), ",\"span_id\":\"",
                      ToHex(d.span_id), "\",\"start\":\"", Rfc3339(d.start),
                      "\",\"duration_us\":", Micros(d.duration),
                      ",\"code\":\"", Code(d.code),
                      "\",\"message\":", JsonString(d.message), "}");
    }
    absl::StrAppend(&out, "],\"downstream_dropped\":", s.downstream_dropped,
                    "}");
  }
  out += "]}\n";
  return out;
}

void AppendDownstreamHtml(const RpczSample& s, std::string* out) {
  if (s.downstream.empty() && s.downstream_dropped == 0) {
    *out += s.sampled ? "none" : "not followed";
    return;
  }
  *out += "<ul>";
  for (const RpczDownstreamCall& d : s.downstream) {
    absl::StrAppend(out, "<li><code>", HtmlEscape(d.method), "</code> to ",
                    HtmlEscape(d.target), " span <code>", ToHex(d.span_id),
                    "</code> ", HumanDuration(d.duration), " ", Code(d.code));
    if (!d.message.empty()) {
      absl::StrAppend(out, ": ", HtmlEscape(d.message));
    }
    *out += "</li>";
  }
  if (s.downstream_dropped != 0) {
    absl::StrAppend(out, "<li>and ", s.downstream_dropped,
                    " more (not listed)</li>");
  }
  *out += "</ul>";
}

std::string RenderHtml(const RpczStore& store,
                       const std::vector<RpczSample>& samples,
                       const std::string& trace_filter) {
  std::string out =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<title>rpcz</title><style>"
      "body{font-family:sans-serif;font-size:14px}"
      "table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}"
      "code{font-size:12px}.err{color:#b00}"
      "</style></head><body>\n<h1>Recent calls</h1>\n";
  absl::StrAppend(&out, "<p>", store.enabled() ? "" : "Recording is off. ",
                  "Calls recorded: ", store.recorded(), "; held: ",
                  store.size(), " (at most ", store.options().max_samples,
                  "); one call in ", store.options().sample_one_in,
                  " is followed");
  if (store.options().keep_failed) out += ", and every failed call kept";
  if (store.options().keep_slower_than != absl::InfiniteDuration()) {
    absl::StrAppend(&out, ", and every call slower than ",
                    absl::FormatDuration(store.options().keep_slower_than));
  }
  out += ". <a href=\"?format=json\">JSON</a></p>\n";
  if (!trace_filter.empty()) {
    absl::StrAppend(&out, "<p>Trace <code>", HtmlEscape(trace_filter),
                    "</code> only. <a href=\"?\">All calls</a></p>\n");
  }
  out +=
      "<table>\n<tr><th>start (UTC)</th><th>trace</th><th>span</th>"
      "<th>parent span</th><th>method</th><th>peer</th><th>queued</th>"
      "<th>handler</th><th>total</th><th>request bytes</th>"
      "<th>response bytes</th><th>status</th><th>downstream calls</th></tr>\n";
  for (const RpczSample& s : samples) {
    const std::string trace = ToHex(s.trace_id);
    absl::StrAppend(
        &out, "<tr><td>", Rfc3339(s.start), "</td><td><a href=\"?trace_id=",
        trace, "\"><code>", trace, "</code></a></td><td><code>",
        ToHex(s.span_id), "</code></td><td><code>", ParentHex(s.parent_span_id),
        "</code></td><td>", HtmlEscape(s.method), "</td><td>",
        HtmlEscape(s.peer), "</td><td>", HumanDuration(s.queued), "</td><td>",
        HumanDuration(s.handler), "</td><td>", HumanDuration(s.total),
        "</td><td>", s.request_bytes, "</td><td>", s.response_bytes, "</td>");
    absl::StrAppend(&out, s.code == absl::StatusCode::kOk ? "<td>" : "<td class=\"err\">",
                    Code(s.code));
    if (!s.message.empty()) absl::StrAppend(&out, ": ", HtmlEscape(s.message));
    out += "</td><td>";
    AppendDownstreamHtml(s, &out);
    out += "</td></tr>\n";
  }
  out += "</table>\n</body></html>\n";
  return out;
}

}  // namespace

admin::HttpResponse RenderRpcz(const RpczStore& store,
                               const admin::HttpRequest& request) {
  admin::HttpResponse response;
  TraceId filter;
  const TraceId* wanted = nullptr;
  std::string trace_filter;
  auto it = request.query.find("trace_id");
  if (it != request.query.end() && !it->second.empty()) {
    if (!ParseHex(it->second, &filter)) {
      response.status = 400;
      response.body = absl::StrCat(
          "trace_id must be 32 lower-case hex digits, got \"",
          it->second.substr(0, 64), "\"\n");
      return response;
    }
    wanted = &filter;
    trace_filter = it->second;
  }
  const std::vector<RpczSample> samples = store.Snapshot(wanted);
  if (request.WantsJson()) {
    response.content_type = "application/json";
    response.body = RenderJson(store, samples);
  } else {
    response.content_type = "text/html; charset=utf-8";
    response.body = RenderHtml(store, samples, trace_filter);
  }
  return response;
}

}  // namespace bevrpc::trace
