// EtcdResolver: the Resolver for etcd://H:P[,H:P...]/PREFIX targets. Every
// key under PREFIX (rpc/naming/etcd_registry.h) is one endpoint.
//
//   auto target = naming::ParseTarget("etcd://127.0.0.1:2379/svc/echo").value();
//   std::unique_ptr<naming::Resolver> r =
//       naming::NewEtcdResolver(target, loop, {});              // on loop
//   r->Start([](absl::StatusOr<naming::EndpointList> list) { ... });
//
// How: range over [PREFIX, PrefixEnd(PREFIX)) and report the full list,
// then watch from the range's revision + 1 on a connection of its own,
// applying PUT/DELETE events and reporting each changed list (sorted by
// address, one entry per address). A value that does not parse is skipped
// with a log line. If the watch's resume revision has been compacted away,
// it ranges again and watches from there. Any failure (etcd down, a
// connection lost) is retried with jittered exponential backoff
// (ResolverOptions::etcd_initial_backoff .. etcd_max_backoff), resuming the
// watch from the last revision seen + 1, so changes made meanwhile arrive
// as events; the last list is kept, and an error is reported only while
// there has never been a list.
//
// Threading: as Resolver (loop thread only; the listener runs there).
#ifndef BEVRPC_RPC_NAMING_ETCD_RESOLVER_H_
#define BEVRPC_RPC_NAMING_ETCD_RESOLVER_H_

#include <memory>

#include "rpc/naming/etcd_client.h"
#include "rpc/naming/resolver.h"
#include "rpc/naming/target.h"
#include "transport/event_loop.h"

namespace bevrpc::naming {

// `target` must be Target::Scheme::kEtcd; `loop` is borrowed and must
// outlive the resolver. `client_options` tunes the HTTP side (timeouts;
// request_timeout is taken from options.etcd_request_timeout).
std::unique_ptr<Resolver> NewEtcdResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options,
    const EtcdClientOptions& client_options = {});

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_ETCD_RESOLVER_H_
