#include "rpc/status/chart_js.h"

#include "absl/strings/str_cat.h"

namespace bevrpc::status {

std::string ChartJsUrl() { return absl::StrCat(kChartJsPath, "?v=", ChartJsHash()); }

admin::HttpResponse ServeChartJs(const admin::HttpRequest& request) {
  admin::HttpResponse response;
  if (request.method != "GET" && request.method != "HEAD") {
    response.status = 405;
    response.body = absl::StrCat(request.method, " not allowed on ",
                                 kChartJsPath, "; use GET\n");
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  response.content_type = "application/javascript; charset=utf-8";
  response.body = std::string(ChartJs());
  response.headers.emplace_back("Cache-Control",
                                "public, max-age=31536000, immutable");
  return response;
}

}  // namespace bevrpc::status
