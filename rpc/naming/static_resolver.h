// Resolvers that need no event: HOST:PORT / [V6]:PORT and list:///.
// Every host is resolved with getaddrinfo when the resolver is created
// (blocking; numeric addresses never block) and the list never changes.
// A host that resolves to several addresses gives one endpoint each.
//
// Threading: as naming::Resolver; creation may block on DNS, so create it
// off the I/O loops (Channel::Create does).
#ifndef BEVRPC_RPC_NAMING_STATIC_RESOLVER_H_
#define BEVRPC_RPC_NAMING_STATIC_RESOLVER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "rpc/naming/resolver.h"

namespace bevrpc::naming {

// Every address `hp.host` resolves to, as endpoints on `hp.port`.
absl::StatusOr<EndpointList> ResolveHostPort(const HostPort& hp);

// For Target::Scheme::kHostPort and kList.
absl::StatusOr<std::unique_ptr<Resolver>> NewStaticResolver(
    const Target& target, transport::EventLoop* loop);

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_STATIC_RESOLVER_H_
