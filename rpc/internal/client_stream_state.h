// ClientStreamState: what a ClientStream handle (any thread) shares with
// its call's ClientSlot (the loop thread). Internal to rpc/.
//
// Everything is guarded by mu, except the immutable identity fields. The
// loop side sends frames only with mu released.
#ifndef BEVRPC_RPC_INTERNAL_CLIENT_STREAM_STATE_H_
#define BEVRPC_RPC_INTERNAL_CLIENT_STREAM_STATE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/method.h"
#include "transport/event_loop.h"
#include "transport/sync.h"

namespace bevrpc::internal {

class ClientSlot;
class EndpointSet;

class ClientStreamState : public std::enable_shared_from_this<ClientStreamState> {
 public:
  struct Inbound {
    std::unique_ptr<google::protobuf::Message> message;
    size_t bytes = 0;
  };

  // Immutable after Start. A stream opened before the channel knew any
  // endpoint is "parked" (rpc/internal/endpoint_set.h): it has no slot
  // yet, `loop` is the channel's control loop, and operations on the slot
  // go there first and are forwarded once the stream is placed.
  std::shared_ptr<ClientSlot> slot;
  transport::EventLoop* loop = nullptr;
  uint64_t call_id = 0;
  bool parked = false;
  std::weak_ptr<EndpointSet> set;  // Parked streams.
  uint64_t ticket = 0;             // Parked streams: EndpointSet::Park()'s.
  MethodKind kind = MethodKind::kUnary;
  const google::protobuf::Message* response_prototype = nullptr;
  size_t write_buffer_bytes = 0;
  size_t max_message_bytes = 0;
  uint32_t window = 0;  // Our receive window.

  Mutex mu;
  CondVar cv;
  // Outbound.
  std::deque<std::string> out ABSL_GUARDED_BY(mu);
  size_t out_bytes ABSL_GUARDED_BY(mu) = 0;
  int64_t send_credit ABSL_GUARDED_BY(mu) = 0;
  bool close_send ABSL_GUARDED_BY(mu) = false;       // Asked for.
  bool half_close_sent ABSL_GUARDED_BY(mu) = false;
  bool pump_scheduled ABSL_GUARDED_BY(mu) = false;
  // The connection carrying the call is writable (Write() refuses while it
  // is not, like a server stream's).
  bool conn_writable ABSL_GUARDED_BY(mu) = true;
  absl::AnyInvocable<void()> on_writable ABSL_GUARDED_BY(mu);
  // Inbound.
  std::deque<Inbound> in ABSL_GUARDED_BY(mu);
  uint64_t granted ABSL_GUARDED_BY(mu) = 0;
  uint64_t received ABSL_GUARDED_BY(mu) = 0;
  uint64_t consumed_unannounced ABSL_GUARDED_BY(mu) = 0;
  bool grant_scheduled ABSL_GUARDED_BY(mu) = false;
  absl::AnyInvocable<void()> on_readable ABSL_GUARDED_BY(mu);
  Metadata headers ABSL_GUARDED_BY(mu);
  // The end.
  bool ended ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
  Metadata trailers ABSL_GUARDED_BY(mu);
  absl::AnyInvocable<void(absl::Status)> on_done ABSL_GUARDED_BY(mu);

  bool client_streams() const {
    return kind == MethodKind::kClientStreaming ||
           kind == MethodKind::kBidiStreaming;
  }
  bool CanAcceptLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return !ended && !close_send && conn_writable &&
           out_bytes < write_buffer_bytes;
  }

  // Any thread: posts `slot->PumpStream(call_id)` to the loop. The caller
  // has just set pump_scheduled, so at most one is queued.
  void PostPump();

  // Any thread: runs `op(slot, call_id)` on the slot's loop (inline when
  // `inline_ok` and already there). Parked streams: queued until placed,
  // dropped if the call ends first.
  using SlotOp = absl::AnyInvocable<void(ClientSlot*, uint64_t)>;
  void RunOnSlot(SlotOp op, bool inline_ok = false);
  // Any thread: ends the call with `why` (CANCEL to the server if sent).
  void Abort(absl::Status why, bool cancel);
  // Control loop, parked streams: placed on `placed` as call `id` (null:
  // ended while parked). Queued operations follow the call's start.
  void Unpark(std::shared_ptr<ClientSlot> placed, uint64_t id);

  // The call ended (loop thread): wakes everyone, runs callbacks.
  void End(absl::Status final_status);
  // Wakes blocked readers/writers; runs the callbacks whose condition
  // holds (loop thread).
  void Wake();

 private:
  // Parked streams, control loop only.
  std::shared_ptr<ClientSlot> placed_slot_;
  uint64_t placed_id_ = 0;
  bool unparked_ = false;
  std::vector<SlotOp> deferred_;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CLIENT_STREAM_STATE_H_
