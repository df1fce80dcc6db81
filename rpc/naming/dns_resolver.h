// The dns:/// resolver: every A and AAAA address of the target's host,
// looked up with evdns on the channel's loop and re-resolved periodically.
//
//   auto target = naming::ParseTarget("dns://127.0.0.1:5353/svc.test:80");
//   auto r = naming::NewDnsResolver(*target, loop, options).value();  // loop
//   r->Start([](absl::StatusOr<naming::EndpointList> list) { ... });
//
// Behaviour (see docs/naming.md):
// - Asks target.dns_server when the target names one (it must be a
//   numeric IP), else the nameservers of /etc/resolv.conf.
// - Reports the full list (numeric "IP:PORT" / "[V6]:PORT", weight 1,
//   IPv4 first then IPv6, no duplicates) the first time and then only when
//   it changed.
// - Re-resolves dns_refresh_interval after each resolution. RequestRefresh()
//   re-resolves soon, but never sooner than dns_min_refresh_interval after
//   the last resolution finished; requests coalesce into at most one
//   pending lookup (one made while a lookup is in flight is served after
//   it, since that answer may predate the failure).
// - A failure before any list is reported to the listener (the status names
//   the target and the cause: NOT_FOUND for NXDOMAIN / no records,
//   UNAVAILABLE when no answer came) and retried after a backoff starting
//   at max(dns_min_refresh_interval, 10 ms) and doubling up to
//   dns_refresh_interval; each failed retry is reported again. A failure
//   after a good list is logged once to stderr and the old list stays; it
//   is retried with the same backoff.
// - A numeric IP host is reported once, without any query, and never
//   re-resolved.
//
// Threading: as every Resolver (rpc/naming/resolver.h): create, Start(),
// RequestRefresh() and destroy on `loop`'s thread; the listener runs there,
// never inline from Start() and never after destruction. The listener may
// destroy the resolver (which destroys the listener itself: copy out any
// captures needed after that).
#ifndef BEVRPC_RPC_NAMING_DNS_RESOLVER_H_
#define BEVRPC_RPC_NAMING_DNS_RESOLVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "rpc/naming/resolver.h"
#include "rpc/naming/target.h"
#include "transport/event_loop.h"

namespace bevrpc::naming {

// `target` must have Scheme::kDns; it is copied. `loop` is borrowed and must
// outlive the resolver. Errors: INVALID_ARGUMENT (not a dns target, a DNS
// server that is not a numeric IP, non-positive refresh interval),
// FAILED_PRECONDITION (no DNS server named and /etc/resolv.conf lists none).
absl::StatusOr<std::unique_ptr<Resolver>> NewDnsResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options);

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_DNS_RESOLVER_H_
