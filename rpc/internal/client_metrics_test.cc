#include "rpc/internal/client_metrics.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/balancing/endpoint_health.h"
#include "rpc/metrics/exposition.h"
#include "rpc/metrics/metrics.h"

namespace bevrpc::internal {
namespace {

std::shared_ptr<ClientMetrics> Make(metrics::MetricsRegistry* registry) {
  absl::StatusOr<std::shared_ptr<ClientMetrics>> m =
      ClientMetrics::Create(registry, "127.0.0.1:1");
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

std::string Scrape(metrics::MetricsRegistry& registry) {
  std::string text;
  metrics::RenderPrometheus(registry.Collect(), &text);
  return text;
}

TEST(ClientMetricsTest, OneSeriesPerNameWhateverBufferHoldsIt) {
  metrics::MetricsRegistry registry;
  std::shared_ptr<ClientMetrics> m = Make(&registry);
  ASSERT_NE(m, nullptr);
  const std::string a = "bevrpc.echo.Echo/Echo";
  const std::string b = a;  // Same name, another buffer.
  CallMetrics* first = m->For(a);
  EXPECT_EQ(m->For(b), first);
  EXPECT_NE(m->For("bevrpc.echo.Echo/Ech0"), first);
  EXPECT_NE(m->For("bevrpc.echo.Echo/Echo2"), first);
  EXPECT_NE(m->For("a/b"), first);  // Shorter than a hashed word.
  EXPECT_NE(m->For(""), first);
  first->Started();
  first->Started();
  EXPECT_NE(Scrape(registry).find("bevrpc_client_started_total{service="
                                  "\"bevrpc.echo.Echo\",method=\"Echo\"} 2"),
            std::string::npos)
      << Scrape(registry);
}

// The hash reads three words and the length: names that differ only
// between them all hash alike. They probe further but each still has its
// own series, and each lookup finds its own.
TEST(ClientMetricsTest, NamesThatHashAlikeKeepTheirOwnSeries) {
  metrics::MetricsRegistry registry;
  std::shared_ptr<ClientMetrics> m = Make(&registry);
  ASSERT_NE(m, nullptr);
  // 30 bytes: words at [0, 8), [11, 19) and [22, 30); bytes 8-10 and
  // 19-21 are never read.
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) {
    std::string name = "pkg.Svc/" + std::string(22, 'x');
    name[8] = static_cast<char>('a' + i % 26);
    name[9] = static_cast<char>('a' + i / 26 % 26);
    name[20] = static_cast<char>('A' + i % 7);
    ASSERT_EQ(name.size(), 30u);
    names.push_back(name);
  }
  std::set<std::string> distinct(names.begin(), names.end());
  ASSERT_EQ(distinct.size(), names.size());
  std::vector<CallMetrics*> series;
  for (const std::string& name : names) series.push_back(m->For(name));
  EXPECT_EQ(std::set<CallMetrics*>(series.begin(), series.end()).size(),
            names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(m->For(std::string(names[i])), series[i]) << names[i];
  }
}

TEST(ClientMetricsTest, NamesPastTheBoundShareTheOverflowSeries) {
  metrics::MetricsRegistry registry;
  std::shared_ptr<ClientMetrics> m = Make(&registry);
  ASSERT_NE(m, nullptr);
  std::set<CallMetrics*> own;
  for (size_t i = 0; i < ClientMetrics::kMaxMethods; ++i) {
    own.insert(m->For(absl::StrCat("pkg.Svc/M", i)));
  }
  EXPECT_EQ(own.size(), ClientMetrics::kMaxMethods);
  CallMetrics* past = m->For("pkg.Svc/OneTooMany");
  EXPECT_EQ(own.count(past), 0u);
  EXPECT_EQ(m->For("pkg.Svc/AnotherTooMany"), past);
  EXPECT_EQ(m->For("pkg.Svc/M0"), m->For("pkg.Svc/M0"));
  EXPECT_EQ(own.count(m->For("pkg.Svc/M999")), 1u);
  past->Started();
  EXPECT_NE(Scrape(registry).find("method=\"__overflow__\"} 1"),
            std::string::npos);
}

TEST(ClientMetricsTest, ChannelsToOneTargetShareOneTable) {
  metrics::MetricsRegistry registry;
  metrics::MetricsRegistry other_registry;
  std::shared_ptr<ClientMetrics> a = Make(&registry);
  std::shared_ptr<ClientMetrics> b = Make(&registry);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->For("pkg.Svc/M"), b->For("pkg.Svc/M"));
  std::shared_ptr<ClientMetrics> elsewhere = Make(&other_registry);
  EXPECT_NE(elsewhere, a);
  absl::StatusOr<std::shared_ptr<ClientMetrics>> other_target =
      ClientMetrics::Create(&registry, "127.0.0.1:2");
  ASSERT_TRUE(other_target.ok());
  EXPECT_NE(*other_target, a);
  // Once no channel holds it, the next channel gets a new table over the
  // same series.
  a->For("pkg.Svc/M")->Started();
  a.reset();
  b.reset();
  std::shared_ptr<ClientMetrics> again = Make(&registry);
  ASSERT_NE(again, nullptr);
  again->For("pkg.Svc/M")->Started();
  EXPECT_NE(Scrape(registry).find("bevrpc_client_started_total{service="
                                  "\"pkg.Svc\",method=\"M\"} 2"),
            std::string::npos)
      << Scrape(registry);
}

std::string StateLine(const std::string& state, int value) {
  return absl::StrCat("bevrpc_client_endpoint_state{target=\"127.0.0.1:1\","
                      "endpoint=\"10.0.0.1:80\",state=\"",
                      state, "\"} ", value, "\n");
}

// Two channels to one target both have endpoint 10.0.0.1:80: one set of
// state series stands for both, reads the earlier channel's view, and
// outlives it while the other still has the endpoint.
TEST(ClientMetricsTest, EndpointStateSeriesLastWhileAnyChannelHasTheEndpoint) {
  metrics::MetricsRegistry registry;
  std::shared_ptr<ClientMetrics> m = Make(&registry);
  ASSERT_NE(m, nullptr);
  auto ready = std::make_shared<balancing::EndpointHealth>(1);
  ready->AddReady(1);
  auto connecting = std::make_shared<balancing::EndpointHealth>(1);
  connecting->AddConnecting(1);
  std::shared_ptr<EndpointMetrics> first = m->ForEndpoint("10.0.0.1:80", ready);
  std::shared_ptr<EndpointMetrics> second =
      m->ForEndpoint("10.0.0.1:80", connecting);
  EXPECT_EQ(first->state, second->state);
  EXPECT_EQ(first->in_flight, second->in_flight);
  std::string text = Scrape(registry);
  EXPECT_NE(text.find(StateLine("READY", 1)), std::string::npos) << text;
  EXPECT_NE(text.find(StateLine("CONNECTING", 0)), std::string::npos) << text;

  first.reset();  // The first channel lets the endpoint go.
  text = Scrape(registry);
  EXPECT_NE(text.find(StateLine("READY", 0)), std::string::npos) << text;
  EXPECT_NE(text.find(StateLine("CONNECTING", 1)), std::string::npos) << text;

  second.reset();  // And the last.
  text = Scrape(registry);
  EXPECT_EQ(text.find("bevrpc_client_endpoint_state{"), std::string::npos)
      << text;

  // The endpoint comes back: new series.
  std::shared_ptr<EndpointMetrics> back = m->ForEndpoint("10.0.0.1:80", ready);
  text = Scrape(registry);
  EXPECT_NE(text.find(StateLine("READY", 1)), std::string::npos) << text;
}

}  // namespace
}  // namespace bevrpc::internal
