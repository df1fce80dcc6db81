// CreateResolver: the resolver for any parsed target (rpc/naming/resolver.h).
//
// Threading: may block (HOST:PORT and list:/// resolve host names with
// getaddrinfo here): call it off the I/O loops, before `loop` runs or from
// another thread; the resolver it returns then belongs to `loop`'s thread.
#ifndef BEVRPC_RPC_NAMING_RESOLVERS_H_
#define BEVRPC_RPC_NAMING_RESOLVERS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "rpc/naming/resolver.h"

namespace bevrpc::naming {

absl::StatusOr<std::unique_ptr<Resolver>> CreateResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options);

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_RESOLVERS_H_
