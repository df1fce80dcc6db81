#include "rpc/naming/resolvers.h"

#include "absl/strings/str_cat.h"
#include "rpc/naming/dns_resolver.h"
#include "rpc/naming/etcd_resolver.h"
#include "rpc/naming/file_resolver.h"
#include "rpc/naming/static_resolver.h"

namespace bevrpc::naming {

absl::StatusOr<std::unique_ptr<Resolver>> CreateResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options) {
  switch (target.scheme) {
    case Target::Scheme::kHostPort:
    case Target::Scheme::kList:
      return NewStaticResolver(target, loop);
    case Target::Scheme::kFile:
      return NewFileResolver(target, loop, options);
    case Target::Scheme::kDns:
      return NewDnsResolver(target, loop, options);
    case Target::Scheme::kEtcd:
      return NewEtcdResolver(target, loop, options);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("target \"", target.ToString(), "\": unknown scheme"));
}

}  // namespace bevrpc::naming
