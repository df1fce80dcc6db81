// Unit tests of per-tenant limits: the concurrency bound and the request
// bucket per tenant, one tenant over its limit leaving another unaffected,
// the retry hint, keying by header, the bound on tenants tracked, parsing,
// the byte-rate groups and their metrics (the bytes themselves are limited
// end to end: tests/e2e/security/tenant_byte_rate_test.cc).
#include <any>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
            "line 1: \"qps=3\" is not rps=N, burst=N, concurrency=N, "
            "read_bytes_per_sec=BYTES or write_bytes_per_sec=BYTES (BYTES: a "
            "whole number of bytes per second)");
  EXPECT_EQ(TenantLimiter::ParseInto("a rps=-1\n", &o).message(),
            "line 1: tenant a: rate, burst and concurrency must be >= 0");
}

TEST(TenantLimiterTest, ParsesByteRates) {
  TenantLimitsOptions o = Options();
  ASSERT_TRUE(TenantLimiter::ParseInto(
                  "batch rps=50 write_bytes_per_sec=262144\n"
                  "upload read_bytes_per_sec=1000000 write_bytes_per_sec=0\n"
                  "* concurrency=8 read_bytes_per_sec=65536 "
                  "write_bytes_per_sec=131072\n",
                  &o)
                  .ok());
  EXPECT_EQ(o.tenants["batch"].requests_per_second, 50);
  EXPECT_EQ(o.tenants["batch"].byte_rate.read_bytes_per_sec, 0u);
  EXPECT_EQ(o.tenants["batch"].byte_rate.write_bytes_per_sec, 262144u);
  EXPECT_EQ(o.tenants["upload"].byte_rate.read_bytes_per_sec, 1000000u);
  EXPECT_EQ(o.tenants["upload"].byte_rate.write_bytes_per_sec, 0u);
  EXPECT_EQ(o.default_limit.max_concurrent_calls, 8);
  EXPECT_EQ(o.default_limit.byte_rate.read_bytes_per_sec, 65536u);
  EXPECT_EQ(o.default_limit.byte_rate.write_bytes_per_sec, 131072u);
}

TEST(TenantLimiterTest, RefusesBadByteRates) {
  const std::string expected_form =
      " is not rps=N, burst=N, concurrency=N, read_bytes_per_sec=BYTES or "
      "write_bytes_per_sec=BYTES (BYTES: a whole number of bytes per second)";
  // Negative, fractional, with a unit (no size suffixes), empty, too big
  // for 64 bits, misspelt: each names its line and field.
  for (const char* field :
       {"write_bytes_per_sec=-1", "read_bytes_per_sec=1.5",
        "write_bytes_per_sec=1M", "write_bytes_per_sec=",
        "read_bytes_per_sec=18446744073709551616", "write_bytes_per_second=5",
        "write_bytes_per_sec"}) {
    TenantLimitsOptions o = Options();
    absl::Status s = TenantLimiter::ParseInto(
        absl::StrCat("# limits\nok rps=1\nbad rps=2 ", field, "\n"), &o);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_EQ(s.message(),
              absl::StrCat("line 3: \"", field, "\"", expected_form))
        << field;
  }
}

TEST(TenantLimiterTest, TenantsWithAByteRateGetAGroupAndByteCounts) {
  metrics::MetricsRegistry registry;
  TenantLimitsOptions o = Options();
  o.metrics_registry = &registry;
  o.tenants["slow"].byte_rate.write_bytes_per_sec = 64 * 1024;
  o.tenants["free"].max_concurrent_calls = 10;
  o.default_limit.byte_rate.read_bytes_per_sec = 1024 * 1024;
  o.max_tenants = 4;
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok()) << limiter.status();
  std::string page;
  registry.RenderPrometheus(&page);
  // Made lazily: no group (and no series) before a tenant's first call.
  EXPECT_EQ(page.find("bevrpc_tenant_bytes_total{"), std::string::npos)
      << page;
  // Calls without a connection (no ServerContext here) still make the
  // group; the bytes are counted once connections join (end to end).
  for (const char* who : {"slow", "slow", "free", "x", "y", "z"}) {
    Call c = MakeCall(who);
    ASSERT_TRUE((*limiter)->OnCallStart(c.info, c.state).ok()) << who;
    (*limiter)->OnCallEnd(c.info, c.state, absl::OkStatus(),
                          absl::Milliseconds(1));
  }
  page.clear();
  registry.RenderPrometheus(&page);
  for (const char* series :
       {"bevrpc_tenant_bytes_total{tenant=\"slow\",direction=\"read\"} 0",
        "bevrpc_tenant_bytes_total{tenant=\"slow\",direction=\"written\"} 0",
        // The default limit's byte rate: a group per tenant, and one for
        // the tenants past max_tenants together.
        "bevrpc_tenant_bytes_total{tenant=\"x\",direction=\"read\"} 0",
        "bevrpc_tenant_bytes_total{tenant=\"__other__\",direction=\"read\"} 0"}) {
    EXPECT_NE(page.find(series), std::string::npos) << series << "\n" << page;
  }
  // No byte rate, no group.
  EXPECT_EQ(page.find("bevrpc_tenant_bytes_total{tenant=\"free\""),
            std::string::npos)
      << page;
  EXPECT_EQ(page.find("tenant=\"y\",direction"), std::string::npos) << page;
  // The series go with the limiter (its groups are freed).
  limiter->reset();
  page.clear();
  registry.RenderPrometheus(&page);
  EXPECT_EQ(page.find("bevrpc_tenant_bytes_total{"), std::string::npos)
      << page;
}

TEST(TenantLimiterTest, NoByteRateNoGroup) {
  metrics::MetricsRegistry registry;
  TenantLimitsOptions o = Options();
  o.metrics_registry = &registry;
  o.tenants["a"].requests_per_second = 100;
  auto limiter = TenantLimiter::Create(o);
  ASSERT_TRUE(limiter.ok());
  Call c = MakeCall("a");
  ASSERT_TRUE((*limiter)->OnCallStart(c.info, c.state).ok());
  std::string page;
  registry.RenderPrometheus(&page);
  EXPECT_EQ(page.find("bevrpc_tenant_bytes_total{"), std::string::npos)
      << page;
}

}  // namespace
}  // namespace bevrpc::tenant
