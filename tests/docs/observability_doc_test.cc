// docs/observability.md names every metric bevrpc exports: a server and a
// client that made calls render their registry, and each family on the
// page (# TYPE lines: server, client, endpoint, process, tenant limits)
// must appear in the doc as `name`.
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/metrics/metrics.h"
#include "rpc/server.h"
#include "rpc/tenant/tenant_limits.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"

namespace bevrpc {
namespace {

std::string ReadDoc() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir ? srcdir : ".",
                                "/bevrpc/docs/observability.md"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ObservabilityDocTest, EveryExportedMetricIsDocumented) {
  metrics::MetricsRegistry registry;
  ServerOptions server_options;
  server_options.listen_address = "127.0.0.1:0";
  server_options.metrics_registry = &registry;
  // Per-tenant limits, with a byte rate so that every family has a series.
  tenant::TenantLimitsOptions limits;
  limits.metrics_registry = &registry;
  limits.default_limit.byte_rate.write_bytes_per_sec = 1 << 30;
  auto limiter = tenant::TenantLimiter::Create(limits);
  ASSERT_TRUE(limiter.ok()) << limiter.status();
  server_options.interceptors = {*limiter};
  Server server(server_options);
  ASSERT_TRUE(echo::RegisterEchoService(server).ok());
  ASSERT_TRUE(server.Start().ok());

  ChannelOptions channel_options;
  channel_options.metrics_registry = &registry;
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server.port()),
                                 channel_options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  echo::EchoRequest request;
  request.set_message("hi");
  echo::EchoResponse response;
  ASSERT_TRUE((*channel)->Call("bevrpc.echo.Echo/Echo", request, &response,
                               CallOptions())
                  .ok());

  std::string page;
  registry.RenderPrometheus(&page);
  const std::string doc = ReadDoc();
  ASSERT_FALSE(doc.empty()) << "docs/observability.md not found";
  int families = 0;
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE ")) continue;
    absl::string_view name = line.substr(0, line.find(' '));
    ++families;
    EXPECT_TRUE(absl::StrContains(doc, absl::StrCat("`", name, "`")))
        << name << " is exported but not in docs/observability.md";
  }
  // Server, client, endpoint and process families at least.
  EXPECT_GE(families, 25);
  server.Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace bevrpc
