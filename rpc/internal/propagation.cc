#include "rpc/internal/propagation.h"

#include <algorithm>
#include <utility>

#include "rpc/internal/call_trace.h"
#include "rpc/internal/client_stream_state.h"
#include "rpc/internal/server_call.h"
#include "rpc/server_context.h"

namespace bevrpc {

CallOptions CallOptions::From(const ServerContext& ctx) {
  CallOptions options;
  options.parent = ctx.call_->ChildScope();
  options.trace = ctx.call_->trace_state().context();
  options.rpcz = ctx.call_->trace_state().record();
  return options;
}

namespace internal {

absl::Status ChildCall::CapDeadline(absl::Duration* timeout,
                                    absl::Time* deadline) {
  absl::Status gone = parent_->reason();
  if (!gone.ok()) return gone;
  const absl::Time now = absl::Now();
  const absl::Time cap = parent_->deadline();
  if (cap == absl::InfiniteFuture()) return absl::OkStatus();
  if (cap <= now) {
    return absl::DeadlineExceededError(
        "the incoming call's deadline has passed");
  }
  if (cap < *deadline) {
    *deadline = cap;
    *timeout = cap - now;
  }
  return absl::OkStatus();
}

absl::AnyInvocable<void(absl::Status)> ChildCall::WrapDone(
    absl::AnyInvocable<void(absl::Status)> done) {
  return [self = shared_from_this(),
          done = std::move(done)](absl::Status status) mutable {
    self->Ended();
    if (status.code() == absl::StatusCode::kCancelled) {
      MutexLock lock(&self->mu_);
      if (!self->why_.ok()) status = self->why_;
    }
    if (self->rpcz_ != nullptr) self->RecordDownstream(status);
    done(std::move(status));
  };
}

void ChildCall::Ended() {
  uint64_t id;
  {
    MutexLock lock(&mu_);
    ended_ = true;
    id = id_;
    id_ = 0;
  }
  // Waits for OnParentCancelled() if it is running elsewhere: after this,
  // nothing uses the channel on this call's behalf.
  parent_->Remove(id);
}

void ChildCall::Track(std::shared_ptr<trace::RpczRecord> record,
                      absl::string_view method, const std::string& target,
                      const trace::SpanId& span) {
  if (record == nullptr) return;
  rpcz_ = std::move(record);
  downstream_.method = std::string(method);
  downstream_.target = target;
  downstream_.span_id = span;
  downstream_.start = absl::Now();
}

void ChildCall::RecordDownstream(const absl::Status& status) {
  downstream_.duration = absl::Now() - downstream_.start;
  downstream_.code = status.code();
  downstream_.message = trace::TruncateMessage(status.message());
  std::shared_ptr<trace::RpczRecord> record = std::move(rpcz_);
  record->AddDownstream(std::move(downstream_));
}

void ChildCall::Link(absl::AnyInvocable<void()> cancel) {
  cancel_ = std::move(cancel);
  const uint64_t id = parent_->Add(
      [self = shared_from_this()](const absl::Status& why) {
        self->OnParentCancelled(why);
      });
  if (id == 0) {  // The parent ended after CapDeadline().
    OnParentCancelled(parent_->reason());
    return;
  }
  bool ended;
  {
    MutexLock lock(&mu_);
    ended = ended_;
    if (!ended) id_ = id;
  }
  // Finished before it was registered: nothing to cancel.
  if (ended) parent_->Remove(id);
}

void ChildCall::OnParentCancelled(const absl::Status& why) {
  {
    MutexLock lock(&mu_);
    if (ended_) return;
    why_ = why;
  }
  cancel_();
}

CallHandle CallWithParent(Channel& channel, transport::EventLoop* fail_loop,
                          size_t max_metadata_bytes,
                          absl::string_view method,
                          const google::protobuf::Message& request,
                          google::protobuf::Message* response,
                          const CallOptions& options,
                          absl::AnyInvocable<void(absl::Status)> done,
                          Metadata* trailers, Metadata* headers) {
  auto child = std::make_shared<ChildCall>(options.parent);
  CallOptions own = options;
  own.parent = nullptr;
  own.rpcz = nullptr;
  const trace::TraceContext sent =
      EnsureTraceparent(&own.metadata, options.trace, max_metadata_bytes);
  child->Track(options.rpcz, method, channel.target(), sent.span_id);
  absl::Time deadline = own.timeout == absl::InfiniteDuration()
                            ? absl::InfiniteFuture()
                            : absl::Now() + own.timeout;
  absl::Status gone = child->CapDeadline(&own.timeout, &deadline);
  if (!gone.ok()) {
    // Like any call's callback: on a loop, never inline.
    fail_loop->Post([done = std::move(done), gone]() mutable {
      done(std::move(gone));
    });
    return CallHandle();
  }
  CallHandle handle =
      channel.CallAsync(method, request, response, own,
                        child->WrapDone(std::move(done)), trailers, headers);
  child->Link([channel = &channel, handle] { channel->Cancel(handle); });
  return handle;
}

std::shared_ptr<ChildCall> AdoptParent(
    const CallOptions& options, absl::Duration* timeout, absl::Time* deadline,
    absl::AnyInvocable<void(absl::Status)>* done, absl::Status* invalid) {
  if (options.parent == nullptr) return nullptr;
  auto child = std::make_shared<ChildCall>(options.parent);
  absl::Status gone = child->CapDeadline(timeout, deadline);
  if (invalid->ok()) *invalid = std::move(gone);
  *done = child->WrapDone(std::move(*done));
  return child;
}

void LinkStream(ChildCall& child,
                const std::shared_ptr<ClientStreamState>& stream) {
  child.Link([weak = std::weak_ptr<ClientStreamState>(stream)] {
    if (std::shared_ptr<ClientStreamState> s = weak.lock()) {
      s->Abort(absl::CancelledError("the incoming call ended"),
               /*cancel=*/true);
    }
  });
}

}  // namespace internal
}  // namespace bevrpc
