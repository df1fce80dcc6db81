// TenantLimiter: a server interceptor (rpc/interceptor.h) that gives each
// tenant its own request rate and concurrent-call limits, so one busy
// tenant cannot take the server from the others.
//
//   TenantLimitsOptions o;
//   o.tenants["batch"] = {.requests_per_second = 50, .max_concurrent_calls = 4};
//   o.default_limit = {.requests_per_second = 1000};
//   options.interceptors.push_back(bevrpc::auth::BearerTokenAuth...);  // first
//   options.interceptors.push_back(std::make_shared<TenantLimiter>(o));
//
// Who the tenant is: by default the call's principal, as an interceptor
// before this one set it (the bearer token's name), else the subject of
// the client's verified certificate (mutual TLS); with `key_header` set, that request header's value
// instead (e.g. "x-tenant", for callers that are trusted to say). A call
// with no key is tenant `anonymous_tenant`.
//
// Limits (0 = none): a token bucket of `requests_per_second` refilled
// continuously, holding at most `burst` requests; and at most
// `max_concurrent_calls` calls in flight. A call over either fails at once
// with RESOURCE_EXHAUSTED, a message naming the tenant and the limit, and
// a retry hint (trailer bevrpc-retry-pushback-ms, which bevrpc clients
// honour when they retry): the time until the bucket holds a token, or
// the tenant's recent average call latency for the concurrency limit.
// Tenants listed in `tenants` have their own limit; any other tenant gets
// `default_limit`, with counters of its own, up to `max_tenants` tenants
// tracked; past that, new unlisted tenants share one entry named
// "__other__" (bounded memory, whatever keys callers send).
//
// Byte rates per tenant are not applied here: set them per connection
// (ServerOptions::per_connection_rate_limit) or per server; see
// docs/security.md.
//
// Metrics (when a registry is given): bevrpc_tenant_calls_total{tenant,
// result="admitted|rate_limited|concurrency_limited"} and
// bevrpc_tenant_in_flight{tenant}.
//
// Threading: thread-safe; OnCallStart/OnCallEnd run on every I/O loop at
// once. The tenant table is read under a lock held for one lookup; each
// tenant's bucket under its own lock.
#ifndef BEVRPC_RPC_TENANT_TENANT_LIMITS_H_
#define BEVRPC_RPC_TENANT_TENANT_LIMITS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/interceptor.h"
#include "rpc/metrics/metrics.h"
#include "transport/sync.h"

namespace bevrpc::tenant {

struct TenantLimit {
  // Requests admitted per second, on average. 0 = no limit.
  double requests_per_second = 0;
  // Most requests admitted at once after a quiet spell. 0 = one second's
  // worth (at least 1).
  double burst = 0;
  // Most calls of the tenant in flight at once. 0 = no limit.
  int max_concurrent_calls = 0;
};

struct TenantLimitsOptions {
  // Empty: the tenant is the call's principal. Else: this request header.
  std::string key_header;
  // Limits of named tenants.
  std::map<std::string, TenantLimit> tenants;
  // Limits of every other tenant (each counted on its own).
  TenantLimit default_limit;
  // The tenant of calls without a key.
  std::string anonymous_tenant = "__anonymous__";
  // Most tenants tracked (named ones included). Default: 10000.
  size_t max_tenants = 10000;
  // Borrowed; null = no metrics. Default: MetricsRegistry::Default().
  metrics::MetricsRegistry* metrics_registry =
      &metrics::MetricsRegistry::Default();
};

class TenantLimiter : public ServerInterceptor {
 public:
  // INVALID_ARGUMENT for a negative rate, burst or concurrency.
  static absl::StatusOr<std::shared_ptr<TenantLimiter>> Create(
      TenantLimitsOptions options);

  // Parses a limits file: one tenant per line,
  //   NAME [rps=R] [burst=B] [concurrency=C]
  // where NAME "*" sets the default limit. '#' comments and blank lines
  // skipped. INVALID_ARGUMENT naming the line.
  static absl::Status ParseInto(absl::string_view contents,
                                TenantLimitsOptions* options);

  absl::Status OnCallStart(ServerCallInfo& call, std::any& state) override;
  void OnCallEnd(const ServerCallInfo& call, std::any& state,
                 const absl::Status& status, absl::Duration latency) override;

  // Calls of `tenant` in flight now (0 if unknown), for tests and pages.
  int in_flight(absl::string_view tenant) const;

 private:
  struct Tenant;
  explicit TenantLimiter(TenantLimitsOptions options);
  Tenant* Find(absl::string_view key);
  std::unique_ptr<Tenant> Make(std::string name, const TenantLimit& limit);

  const TenantLimitsOptions options_;
  metrics::CounterFamily* calls_ = nullptr;
  metrics::GaugeFamily* in_flight_ = nullptr;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Tenant>> tenants_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::tenant

#endif  // BEVRPC_RPC_TENANT_TENANT_LIMITS_H_
