#include "rpc/naming/static_resolver.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "transport/address.h"

namespace bevrpc::naming {
namespace {

class StaticResolver : public Resolver {
 public:
  StaticResolver(transport::EventLoop* loop, EndpointList list)
      : loop_(loop), list_(std::move(list)), alive_(std::make_shared<bool>(true)) {}
  ~StaticResolver() override { *alive_ = false; }

  const EndpointList* fixed_list() const override { return &list_; }

  void Start(Listener listener) override {
    listener_ = std::move(listener);
    // Never inline from Start(); never after destruction (same thread).
    loop_->Post([this, alive = alive_] {
      if (*alive) listener_(list_);
    });
  }

 private:
  transport::EventLoop* const loop_;
  const EndpointList list_;
  Listener listener_;
  std::shared_ptr<bool> alive_;
};

}  // namespace

absl::StatusOr<EndpointList> ResolveHostPort(const HostPort& hp) {
  absl::StatusOr<std::vector<transport::SocketAddress>> addrs =
      transport::SocketAddress::ResolveAll(hp.host, hp.port);
  if (!addrs.ok()) return addrs.status();
  EndpointList out;
  for (const transport::SocketAddress& a : *addrs) {
    EndpointInfo info;
    info.address = a.ToString();
    out.push_back(std::move(info));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Resolver>> NewStaticResolver(
    const Target& target, transport::EventLoop* loop) {
  if (target.scheme != Target::Scheme::kHostPort &&
      target.scheme != Target::Scheme::kList) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target \"", target.ToString(), "\" is not HOST:PORT or list:///"));
  }
  EndpointList list;
  absl::flat_hash_set<std::string> seen;
  for (const HostPort& hp : target.endpoints) {
    absl::StatusOr<EndpointList> one = ResolveHostPort(hp);
    if (!one.ok()) {
      return absl::Status(one.status().code(),
                          absl::StrCat("target \"", target.ToString(),
                                       "\": ", one.status().message()));
    }
    for (EndpointInfo& e : *one) {
      if (seen.insert(e.address).second) list.push_back(std::move(e));
    }
  }
  return std::unique_ptr<Resolver>(new StaticResolver(loop, std::move(list)));
}

}  // namespace bevrpc::naming
