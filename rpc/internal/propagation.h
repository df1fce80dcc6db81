// Propagation: outgoing calls that inherit an incoming call's deadline and
// cancellation (CallOptions::parent, set by CallOptions::From(ctx); rules in
// rpc/call_options.h). Internal to rpc/: Channel::CallAsync() and
// ClientStreamBase::Start() hand calls with a parent here, and calls
// without one never reach this file.
//
//   // In Channel::CallAsync(), first thing:
//   if (options.parent != nullptr) {
//     return internal::CallWithParent(*this, control_loop, method, ...);
//   }
//
// Ownership: a ChildCall is shared by the call's wrapped `done` and by its
// entry in the parent's Cancellation, so the incoming call, its handler and
// the outgoing call may end in any order. The entry is removed when the
// outgoing call ends (before its `done` runs), so a long incoming call that
// makes many calls holds entries only for those still open.
//
// Thread-safe.
#ifndef BEVRPC_RPC_INTERNAL_PROPAGATION_H_
#define BEVRPC_RPC_INTERNAL_PROPAGATION_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/internal/cancellation.h"
#include "rpc/trace/rpcz_store.h"
#include "rpc/trace/trace_context.h"
#include "transport/event_loop.h"
#include "transport/sync.h"

namespace bevrpc::internal {

class ClientStreamState;

// One outgoing call made under a parent Cancellation.
class ChildCall : public std::enable_shared_from_this<ChildCall> {
 public:
  explicit ChildCall(std::shared_ptr<Cancellation> parent)
      : parent_(std::move(parent)) {}

  // Caps the call's `deadline` at the parent's, and sets `timeout` to what
  // is left of it when the parent's is earlier. Returns OK, or why the call
  // must fail at once, unsent: the parent has ended (CANCELLED or
  // DEADLINE_EXCEEDED, as it was told) or its deadline has passed
  // (DEADLINE_EXCEEDED).
  absl::Status CapDeadline(absl::Duration* timeout, absl::Time* deadline);
  // The call's `done`, which first unregisters the call from the parent and
  // reports a CANCELLED that the parent caused with the parent's reason.
  absl::AnyInvocable<void(absl::Status)> WrapDone(
      absl::AnyInvocable<void(absl::Status)> done);
  // Once the call has started: `cancel` runs (once, from the thread that
  // cancels the parent, or from here if that already happened) when the
  // parent ends before the call. Not after the wrapped `done` began.
  void Link(absl::AnyInvocable<void()> cancel);
  // With a followed incoming call (CallOptions::rpcz): lists this call
  // among `record`'s downstream calls when it ends. Before the call starts.
  void Track(std::shared_ptr<trace::RpczRecord> record,
             absl::string_view method, const std::string& target,
             const trace::SpanId& span);

 private:
  void OnParentCancelled(const absl::Status& why);
  void Ended();
  void RecordDownstream(const absl::Status& status);

  const std::shared_ptr<Cancellation> parent_;
  // Set by Link() before the callback is registered; run by it.
  absl::AnyInvocable<void()> cancel_;
  Mutex mu_;
  uint64_t id_ ABSL_GUARDED_BY(mu_) = 0;  // In parent_, while registered.
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status why_ ABSL_GUARDED_BY(mu_);  // The parent cancelled us.
  // Set by Track(), before the call starts; read as it ends.
  std::shared_ptr<trace::RpczRecord> rpcz_;
  trace::RpczDownstreamCall downstream_;
};

// Channel::CallAsync() for a call with options.parent: caps its deadline,
// gives it its traceparent (a child of options.trace, within
// `max_metadata_bytes`), starts it through `channel` without a parent, and
// links it to the parent so that the parent's end cancels it
// (Channel::Cancel()). A parent already gone fails it unsent, on
// `fail_loop` (one of the channel's loops).
CallHandle CallWithParent(Channel& channel, transport::EventLoop* fail_loop,
                          size_t max_metadata_bytes,
                          absl::string_view method,
                          const google::protobuf::Message& request,
                          google::protobuf::Message* response,
                          const CallOptions& options,
                          absl::AnyInvocable<void(absl::Status)> done,
                          Metadata* trailers, Metadata* headers);

// ClientStreamBase::Start(), before the call starts: with options.parent,
// caps `*timeout`/`*deadline`, wraps `*done`, and sets `*invalid` (if still
// OK) when the parent is gone; returns the ChildCall to pass to LinkStream()
// once the stream started. Null (touching nothing) without a parent.
std::shared_ptr<ChildCall> AdoptParent(
    const CallOptions& options, absl::Duration* timeout, absl::Time* deadline,
    absl::AnyInvocable<void(absl::Status)>* done, absl::Status* invalid);
// The parent's end cancels `stream` (CANCEL to the server).
void LinkStream(ChildCall& child,
                const std::shared_ptr<ClientStreamState>& stream);

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_PROPAGATION_H_
