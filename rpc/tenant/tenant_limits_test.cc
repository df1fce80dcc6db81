// Unit tests of per-tenant limits: the concurrency bound and the request
// bucket per tenant, one tenant over its limit leaving another unaffected,
// the retry hint, keying by header, the bound on tenants tracked, parsing.
#include <any>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rpc/metrics/metrics.h"
#include "rpc/tenant/tenant_limits.h"

namespace bevrpc::tenant {
namespace {

struct Call {
  Metadata metadata;
  ServerCallInfo info;
  std::any state;
};

Call MakeCall(const std::string& principal) {
  Call c;
  c.info.method = "acme.Kv/Get";
  c.info.principal = principal;
  return c;
}

TenantLimitsOptions Options() {
  TenantLimitsOptions o;
  o.metrics_registry = nullptr;
  return o;
}

TEST(TenantLimiterTest, ConcurrencyIsBoundedPerTenant) {
  TenantLimitsOptions o = Options();
  o.tenants["a"].max_concurrent_calls = 2;
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok()) << limiter.status();
  std::vector<Call> a(3, MakeCall("a"));
  EXPECT_TRUE((*limiter)->OnCallStart(a[0].info, a[0].state).ok());
  EXPECT_TRUE((*limiter)->OnCallStart(a[1].info, a[1].state).ok());
  absl::Status s = (*limiter)->OnCallStart(a[2].info, a[2].state);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(),
            "tenant a has 2 calls in flight, its limit; retry after 1ms");
  EXPECT_EQ((*limiter)->in_flight("a"), 2);
  // Another tenant (default limit: none) is not affected.
  std::vector<Call> b(5, MakeCall("b"));
  for (Call& c : b) EXPECT_TRUE((*limiter)->OnCallStart(c.info, c.state).ok());
  EXPECT_EQ((*limiter)->in_flight("b"), 5);
  // One of a's calls ends: room for one more.
  (*limiter)->OnCallEnd(a[0].info, a[0].state, absl::OkStatus(),
                        absl::Milliseconds(40));
  EXPECT_EQ((*limiter)->in_flight("a"), 1);
  EXPECT_TRUE((*limiter)->OnCallStart(a[2].info, a[2].state).ok());
  // The hint is now the tenant's recent latency.
  Call d = MakeCall("a");
  s = (*limiter)->OnCallStart(d.info, d.state);
  EXPECT_EQ(s.message(),
            "tenant a has 2 calls in flight, its limit; retry after 40ms");
}

TEST(TenantLimiterTest, RequestRateIsATokenBucketPerTenant) {
  TenantLimitsOptions o = Options();
  // One request per 1000 s: the burst of 3 is all there is in this test.
  o.tenants["a"] = {.requests_per_second = 0.001, .burst = 3};
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok());
  for (int i = 0; i < 3; ++i) {
    Call c = MakeCall("a");
    EXPECT_TRUE((*limiter)->OnCallStart(c.info, c.state).ok()) << i;
    (*limiter)->OnCallEnd(c.info, c.state, absl::OkStatus(),
                          absl::Milliseconds(1));
  }
  Call c = MakeCall("a");
  absl::Status s = (*limiter)->OnCallStart(c.info, c.state);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("tenant a is over its request rate of 0.001/s; "
                             "retry after "),
            std::string::npos)
      << s;
  // Refused calls hold nothing.
  EXPECT_EQ((*limiter)->in_flight("a"), 0);
  Call b = MakeCall("b");
  EXPECT_TRUE((*limiter)->OnCallStart(b.info, b.state).ok());
}

TEST(TenantLimiterTest, KeysByHeaderWhenAsked) {
  TenantLimitsOptions o = Options();
  o.key_header = "x-tenant";
  o.tenants["t1"].max_concurrent_calls = 1;
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok());
  Call c1 = MakeCall("ignored");
  c1.metadata["x-tenant"] = "t1";
  c1.info.metadata = &c1.metadata;
  Call c2 = c1;
  c2.info.metadata = &c2.metadata;
  EXPECT_TRUE((*limiter)->OnCallStart(c1.info, c1.state).ok());
  EXPECT_EQ((*limiter)->OnCallStart(c2.info, c2.state).code(),
            absl::StatusCode::kResourceExhausted);
  // No header: the anonymous tenant.
  Call anon = MakeCall("");
  EXPECT_TRUE((*limiter)->OnCallStart(anon.info, anon.state).ok());
  EXPECT_EQ((*limiter)->in_flight("__anonymous__"), 1);
}

TEST(TenantLimiterTest, WithoutAPrincipalTheCertificateSubjectIsTheTenant) {
  TenantLimitsOptions o = Options();
  o.tenants["CN=client-a,O=Acme"].max_concurrent_calls = 1;
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok());
  PeerIdentity id;
  id.subject = "CN=client-a,O=Acme";
  Call c1 = MakeCall(""), c2 = MakeCall("");
  c1.info.peer_identity = &id;
  c2.info.peer_identity = &id;
  EXPECT_TRUE((*limiter)->OnCallStart(c1.info, c1.state).ok());
  EXPECT_EQ((*limiter)->OnCallStart(c2.info, c2.state).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*limiter)->in_flight("CN=client-a,O=Acme"), 1);
}

TEST(TenantLimiterTest, UnlistedTenantsAreBoundedInNumber) {
  TenantLimitsOptions o = Options();
  o.max_tenants = 4;
  o.default_limit.max_concurrent_calls = 100;
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok());
  for (int i = 0; i < 10; ++i) {
    Call c = MakeCall("tenant-" + std::to_string(i));
    ASSERT_TRUE((*limiter)->OnCallStart(c.info, c.state).ok());
  }
  // Three tracked on their own, the rest share "__other__".
  EXPECT_EQ((*limiter)->in_flight("tenant-0"), 1);
  EXPECT_EQ((*limiter)->in_flight("tenant-2"), 1);
  EXPECT_EQ((*limiter)->in_flight("tenant-3"), 0);
  EXPECT_EQ((*limiter)->in_flight("__other__"), 7);
}

TEST(TenantLimiterTest, CountsInMetrics) {
  metrics::MetricsRegistry registry;
  TenantLimitsOptions o = Options();
  o.metrics_registry = &registry;
  o.tenants["a"].max_concurrent_calls = 1;
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok());
  Call c1 = MakeCall("a"), c2 = MakeCall("a");
  ASSERT_TRUE((*limiter)->OnCallStart(c1.info, c1.state).ok());
  ASSERT_FALSE((*limiter)->OnCallStart(c2.info, c2.state).ok());
  std::string page;
  registry.RenderPrometheus(&page);
  EXPECT_NE(page.find("bevrpc_tenant_calls_total{tenant=\"a\",result=\"admitted\"} 1"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("bevrpc_tenant_calls_total{tenant=\"a\",result=\"concurrency_limited\"} 1"),
            std::string::npos);
  EXPECT_NE(page.find("bevrpc_tenant_in_flight{tenant=\"a\"} 1"),
            std::string::npos);
}

TEST(TenantLimiterTest, ParsesALimitsFile) {
  TenantLimitsOptions o = Options();
  ASSERT_TRUE(TenantLimiter::ParseInto("# limits\n"
                                       "batch rps=50 burst=10 concurrency=4\n"
                                       "* rps=1000\n",
                                       &o)
                  .ok());
  EXPECT_EQ(o.tenants["batch"].requests_per_second, 50);
  EXPECT_EQ(o.tenants["batch"].burst, 10);
  EXPECT_EQ(o.tenants["batch"].max_concurrent_calls, 4);
  EXPECT_EQ(o.default_limit.requests_per_second, 1000);
  EXPECT_EQ(TenantLimiter::ParseInto("a qps=3\n", &o).message(),
            "line 1: \"qps=3\" is not rps=N, burst=N or concurrency=N");
  EXPECT_EQ(TenantLimiter::ParseInto("a rps=-1\n", &o).message(),
            "line 1: tenant a: rate, burst and concurrency must be >= 0");
}

}  // namespace
}  // namespace bevrpc::tenant
