// TenantLimiter: a server interceptor (rpc/interceptor.h) that gives each
// tenant its own request rate, concurrent-call and byte-rate limits, so one
// busy tenant cannot take the server from the others.
//
//   TenantLimitsOptions o;
//   o.tenants["batch"] = {.requests_per_second = 50, .max_concurrent_calls = 4,
//                         .byte_rate = {.write_bytes_per_sec = 1 << 20}};
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
// Byte rates (`byte_rate`; 0 = none): over a byte rate nothing fails, the
// tenant's connections are slowed down. Each tenant with a byte rate gets
// one libevent rate-limit group (transport::RateLimitGroup), made at its
// first call and kept for the limiter's life; the limit is shared by all
// of the tenant's connections together. A call of the tenant puts its
// connection in that group (ServerContext::SetConnectionRateLimitGroup()),
// once per connection and for the connection's life:
//   - the first call with a byte-limited tenant decides: later calls of
//     other tenants on the same connection are carried in the first
//     tenant's group (its limit, its byte counts). Give each tenant its own
//     connections (a client process is usually one tenant);
//   - the connection leaves the server-wide group (ServerOptions::
//     server_rate_limit): libevent groups do not nest, so that limit no
//     longer applies to it; per_connection_rate_limit still does;
//   - bytes the connection moved before that call are not limited; the
//     call itself starts once its connection is in the group (one loop
//     turn later), so its own output is;
//   - such a connection reads with libevent's reader (at most 4 KiB per
//     read), not bevrpc's own faster one.
// The groups' refill timers (every 100 ms each) run on one thread of the
// limiter's, started at the first call of a tenant with a byte rate (not
// before: a prefork master that builds the limiter stays single-threaded,
// and each worker starts its own). A group is made on that thread: the
// first call of each such tenant waits for that round trip. A default
// limit with a byte rate gives every tenant seen a group of its own, up to
// max_tenants (then "__other__" shares one): lower max_tenants if that is
// many timers.
//
// Metrics (when a registry is given): bevrpc_tenant_calls_total{tenant,
// result="admitted|rate_limited|concurrency_limited"},
// bevrpc_tenant_in_flight{tenant}, and for tenants with a byte rate
// bevrpc_tenant_bytes_total{tenant,direction="read|written"}: bytes read
// from and written to the tenant's connections while in its group (read
// when scraped). The registry allows one such series per tenant: a second
// limiter on the same registry does not export the tenants the first
// already does (give it a registry of its own).
//
// Lifetime: the limiter must outlive every connection of every server it
// is installed on (the groups must be empty when it frees them). Holding
// it in ServerOptions::interceptors does that: a server keeps its
// interceptors until it is destroyed, after its last connection closed.
//
// Threading: thread-safe; OnCallStart/OnCallEnd run on every I/O loop at
// once. The tenant table is read under a lock held for one lookup; each
// tenant's bucket under its own lock; a tenant's group is made once, under
// its own lock, and read without one after.
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
#include "transport/loop_pool.h"
#include "transport/rate_limit.h"
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
  // Bytes per second, all of the tenant's connections together: read
  // (requests, from the clients) and written (responses); 0 = no limit.
  // Best effort, as libevent's buckets are (transport/rate_limit.h).
  // Default: none.
  transport::RateLimit byte_rate = {};
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
  // Borrowed, must outlive the limiter; null = no metrics. Default:
  // MetricsRegistry::Default().
  metrics::MetricsRegistry* metrics_registry =
      &metrics::MetricsRegistry::Default();
};

class TenantLimiter : public ServerInterceptor {
 public:
  // INVALID_ARGUMENT for a negative rate, burst or concurrency.
  static absl::StatusOr<std::shared_ptr<TenantLimiter>> Create(
      TenantLimitsOptions options);
  ~TenantLimiter() override;

  // Parses a limits file: one tenant per line,
  //   NAME [rps=R] [burst=B] [concurrency=C]
  //        [read_bytes_per_sec=N] [write_bytes_per_sec=N]
  // where NAME "*" sets the default limit and byte rates are whole bytes
  // per second. '#' comments and blank lines skipped. INVALID_ARGUMENT
  // naming the line.
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
  // The tenant's byte-rate group, made on first use; null without a byte
  // rate (or if it could not be made: the tenant's bytes go unlimited).
  const transport::RateLimitGroup* Group(Tenant* t);
  // The loop of the groups' refill timers, started on first use; null if
  // its thread could not start.
  transport::EventLoop* GroupLoop();

  const TenantLimitsOptions options_;
  metrics::CounterFamily* calls_ = nullptr;
  metrics::GaugeFamily* in_flight_ = nullptr;
  metrics::CounterFamily* bytes_ = nullptr;
  // Runs the groups' refill timers (GroupLoop()); outlives the groups.
  Mutex group_loop_mu_;
  std::unique_ptr<transport::LoopPool> group_loop_
      ABSL_GUARDED_BY(group_loop_mu_);
  bool group_loop_failed_ ABSL_GUARDED_BY(group_loop_mu_) = false;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Tenant>> tenants_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::tenant

#endif  // BEVRPC_RPC_TENANT_TENANT_LIMITS_H_
