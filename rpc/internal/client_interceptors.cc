#include "rpc/internal/client_interceptors.h"

#include <any>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rpc/internal/keepalive.h"  // MonotonicNow()

namespace bevrpc::internal {
namespace {

// One call's record: what OnCallEnd needs once the call is over.
struct Intercepted {
  ClientInterceptors chain;
  std::string target;
  std::string method;
  ClientCallInfo info;
  std::vector<std::any> states;
  size_t started = 0;
  absl::Duration start;

  void End(const absl::Status& status) {
    info.target = target;
    info.method = method;
    info.metadata = nullptr;
    const absl::Duration latency = MonotonicNow() - start;
    while (started > 0) {
      --started;
      chain[started]->OnCallEnd(info, states[started], status, latency);
    }
  }
};

}  // namespace

absl::Status InterceptClientCall(
    const ClientInterceptors& chain, absl::string_view target,
    absl::string_view method, bool streaming, Metadata* metadata,
    absl::Duration timeout, absl::AnyInvocable<void(absl::Status)>* done) {
  auto ic = std::make_unique<Intercepted>();
  ic->chain = chain;
  ic->target = std::string(target);
  ic->method = std::string(method);
  ic->states.resize(chain.size());
  ic->start = MonotonicNow();
  ic->info.target = ic->target;
  ic->info.method = ic->method;
  ic->info.metadata = metadata;
  ic->info.streaming = streaming;
  ic->info.deadline = timeout == absl::InfiniteDuration()
                          ? absl::InfiniteFuture()
                          : absl::Now() + timeout;
  for (const std::shared_ptr<ClientInterceptor>& interceptor : chain) {
    absl::Status s = interceptor->OnCallStart(ic->info, ic->states[ic->started]);
    if (!s.ok()) {
      ic->End(s);
      return s;
    }
    ++ic->started;
  }
  *done = [ic = std::move(ic),
           inner = std::move(*done)](absl::Status status) mutable {
    ic->End(status);
    inner(std::move(status));
  };
  return absl::OkStatus();
}

}  // namespace bevrpc::internal
