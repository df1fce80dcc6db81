// Chart.js (Debian's libjs-chart.js, the UMD build that defines
// window.Chart), embedded into the binary at build time so the /status
// page draws its charts air-gapped: no CDN, no file read at run time.
//
//   server.AddHttpPage(kChartJsPath, "Chart.js", &ServeChartJs);
//   // The page refers to it by ChartJsUrl(): "/static/chart.js?v=<hash>".
//
// The source is //rpc/status:chart_js_data (a genrule over @chart_js).
// Functions are thread-safe; the data is immutable.
#ifndef BEVRPC_RPC_STATUS_CHART_JS_H_
#define BEVRPC_RPC_STATUS_CHART_JS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "rpc/admin/http_page.h"

namespace bevrpc::status {

// Where servers serve it.
inline constexpr char kChartJsPath[] = "/static/chart.js";

// The library's source, byte for byte as Debian ships chart.min.js.
absl::string_view ChartJs();

// First 16 hex digits of the source's SHA-256, computed at build time: the
// URL's version, so a long cache lifetime never serves a stale library.
absl::string_view ChartJsHash();

// kChartJsPath + "?v=" + ChartJsHash().
std::string ChartJsUrl();

// The page handler: the source as application/javascript with
// "Cache-Control: public, max-age=31536000, immutable" (the URL changes
// when the content does). 405 for methods other than GET and HEAD.
admin::HttpResponse ServeChartJs(const admin::HttpRequest& request);

}  // namespace bevrpc::status

#endif  // BEVRPC_RPC_STATUS_CHART_JS_H_
