#include "rpc/status/chart_js.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace bevrpc::status {
namespace {

std::string ReadDebianFile() {
  // The same file the genrule embedded, through the test's runfiles.
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(std::string(srcdir == nullptr ? "." : srcdir) +
                   "/chart_js/chart.min.js");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ChartJsTest, EmbedsDebiansFileByteForByte) {
  const std::string file = ReadDebianFile();
  ASSERT_GT(file.size(), 100000u) << "runfile chart_js/chart.min.js missing";
  EXPECT_EQ(ChartJs(), file);
  EXPECT_TRUE(absl::StartsWith(ChartJs(), "/*!\n * Chart.js v")) << ChartJs().substr(0, 40);
}

TEST(ChartJsTest, UrlCarriesTheContentHash) {
  EXPECT_EQ(ChartJsHash().size(), 16u);
  EXPECT_EQ(ChartJsHash().find_first_not_of("0123456789abcdef"),
            absl::string_view::npos);
  EXPECT_EQ(ChartJsUrl(), std::string("/static/chart.js?v=") +
                              std::string(ChartJsHash()));
}

TEST(ChartJsTest, ServesWithALongCacheLifetime) {
  admin::HttpRequest request;
  request.method = "GET";
  request.path = kChartJsPath;
  admin::HttpResponse response = ServeChartJs(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/javascript; charset=utf-8");
  EXPECT_EQ(response.body, ChartJs());
  ASSERT_EQ(response.headers.size(), 1u);
  EXPECT_EQ(response.headers[0].first, "Cache-Control");
  EXPECT_EQ(response.headers[0].second, "public, max-age=31536000, immutable");
}

TEST(ChartJsTest, RefusesPost) {
  admin::HttpRequest request;
  request.method = "POST";
  request.path = kChartJsPath;
  admin::HttpResponse response = ServeChartJs(request);
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.body, "POST not allowed on /static/chart.js; use GET\n");
}

}  // namespace
}  // namespace bevrpc::status
