// ClientStream and the loop side of client streams (ClientSlot's streaming
// members). Rules: docs/protocol.md, "Streaming calls".
#include "rpc/client_stream.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/frame_codec.h"
#include "rpc/internal/client_interceptors.h"
#include "rpc/internal/client_slot.h"
#include "rpc/internal/client_stream_state.h"
#include "rpc/internal/endpoint_set.h"
#include "rpc/internal/call_trace.h"
#include "rpc/internal/metadata_limits.h"
#include "rpc/internal/propagation.h"
#include "rpc/status.h"
#include "rpc/wire_format.h"

namespace bevrpc {
namespace internal {

void ClientStreamState::End(absl::Status final_status) {
  absl::AnyInvocable<void(absl::Status)> done;
  {
    MutexLock lock(&mu);
    if (ended) return;
    ended = true;
    status = final_status;
    out.clear();
    out_bytes = 0;
    done = std::move(on_done);
    on_done = nullptr;
  }
  Wake();
  if (done) done(std::move(final_status));
}

void ClientStreamState::PostPump() {
  RunOnSlot([](ClientSlot* s, uint64_t id) { s->PumpStream(id); });
}

void ClientStreamState::RunOnSlot(SlotOp op, bool inline_ok) {
  if (!parked) {
    if (slot == nullptr) return;  // Failed before it had a slot.
    if (inline_ok && loop->IsInLoopThread()) {
      op(slot.get(), call_id);
      return;
    }
    loop->Post([s = slot, id = call_id, op = std::move(op)]() mutable {
      op(s.get(), id);
    });
    return;
  }
  // Parked: through the control loop, which knows whether it was placed.
  loop->Post([self = shared_from_this(), op = std::move(op)]() mutable {
    if (self->placed_slot_ != nullptr) {
      std::shared_ptr<ClientSlot> s = self->placed_slot_;
      uint64_t id = self->placed_id_;
      if (s->loop()->IsInLoopThread()) {
        op(s.get(), id);
      } else {
        s->loop()->Post([s, id, op = std::move(op)]() mutable { op(s.get(), id); });
      }
    } else if (!self->unparked_) {
      self->deferred_.push_back(std::move(op));
    }
  });
}

void ClientStreamState::Unpark(std::shared_ptr<ClientSlot> placed,
                               uint64_t id) {
  unparked_ = true;
  std::vector<SlotOp> ops = std::move(deferred_);
  deferred_.clear();
  if (placed == nullptr) return;  // Ended while parked: nothing to do.
  placed_slot_ = std::move(placed);
  placed_id_ = id;  // Assigned by its slot at placement.
  for (SlotOp& op : ops) {
    std::shared_ptr<ClientSlot> s = placed_slot_;
    uint64_t id = placed_id_;
    s->loop()->Post([s, id, op = std::move(op)]() mutable { op(s.get(), id); });
  }
}

void ClientStreamState::Abort(absl::Status why, bool cancel) {
  if (parked) {
    if (std::shared_ptr<EndpointSet> s = set.lock()) {
      s->CancelTicket(ticket, std::move(why));
    }
    return;
  }
  RunOnSlot([why = std::move(why), cancel](ClientSlot* s, uint64_t id) mutable {
    if (cancel) {
      s->Cancel(id);
    } else {
      s->Fail(id, std::move(why));
    }
  });
}

void ClientStreamState::Wake() {
  absl::AnyInvocable<void()> writable;
  absl::AnyInvocable<void()> readable;
  {
    MutexLock lock(&mu);
    if (on_writable && (CanAcceptLocked() || ended)) {
      writable = std::move(on_writable);
      on_writable = nullptr;
    }
    if (on_readable && (!in.empty() || ended)) {
      readable = std::move(on_readable);
      on_readable = nullptr;
    }
  }
  cv.SignalAll();
  if (writable) writable();
  if (readable) readable();
}

// Loop side, in ClientSlot.

void ClientSlot::PumpStream(uint64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  ClientCall* call = it->second.get();
  ClientStreamState* st = call->stream.get();
  if (st == nullptr) return;
  {
    MutexLock lock(&st->mu);
    st->pump_scheduled = false;
  }
  if (call->conn == nullptr) return;  // Not sent yet: Send() pumps.
  while (true) {
    std::string bytes;
    bool half_close = false;
    {
      MutexLock lock(&st->mu);
      if (st->ended) return;
      if (!st->out.empty() && st->send_credit > 0 && st->conn_writable) {
        bytes = std::move(st->out.front());
        st->out.pop_front();
        st->out_bytes -= bytes.size() + wire::kMessageCreditOverhead;
        st->send_credit -= static_cast<int64_t>(
            bytes.size() + wire::kMessageCreditOverhead);
      } else if (st->out.empty() && st->close_send && !st->half_close_sent) {
        st->half_close_sent = half_close = true;
      } else {
        break;
      }
    }
    if (half_close) {
      call->conn->SendStreamFrame(call_id, wire::HALF_CLOSE, {}, 0);
      break;
    }
    call->conn->SendStreamFrame(call_id, wire::MESSAGE, bytes, 0);
    if (call->metrics != nullptr) call->metrics->StreamMessageSent(bytes.size());
  }
  st->Wake();
}

void ClientSlot::OnStreamWritability(uint64_t call_id, bool writable) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  ClientStreamState* st = it->second->stream.get();
  if (st == nullptr) return;
  {
    MutexLock lock(&st->mu);
    st->conn_writable = writable;
  }
  // Writable again: send what waited, then wake writers.
  if (writable) PumpStream(call_id);
}

void ClientSlot::GrantStream(uint64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second->conn == nullptr) return;
  ClientStreamState* st = it->second->stream.get();
  uint64_t n;
  {
    MutexLock lock(&st->mu);
    st->grant_scheduled = false;
    n = st->consumed_unannounced;
    st->consumed_unannounced = 0;
    st->granted += n;
  }
  if (n > 0) {
    it->second->conn->SendStreamFrame(call_id, wire::WINDOW_UPDATE, {},
                                      static_cast<uint32_t>(n));
  }
}

void ClientSlot::FailStream(ClientCall* call, absl::Status status) {
  uint64_t id = call->id;
  if (call->conn != nullptr) call->conn->SendCancel(id);
  Finish(id, std::move(status));
}

void ClientSlot::OnStreamFrame(ClientConnection* conn,
                               const wire::FrameMeta& meta,
                               transport::Buffer& input,
                               size_t payload_size) {
  auto it = calls_.find(meta.call_id());
  if (it == calls_.end() || it->second->conn != conn) return;
  ClientCall* call = it->second.get();
  ClientStreamState* st = call->stream.get();
  if (st == nullptr && meta.kind() == wire::HEADERS) {
    // A unary call's initial headers, ahead of its RESPONSE.
    absl::Status bad = CheckMetadata(
        meta.metadata(), options_->limits.max_metadata_bytes,
        "response headers from the server", absl::StatusCode::kInternal);
    if (!bad.ok()) {
      FailStream(call, std::move(bad));
    } else {
      call->committed = true;  // Never retried once headers arrived.
      if (call->response_headers != nullptr) {
        call->response_headers->insert(meta.metadata().begin(),
                                       meta.metadata().end());
      }
    }
    return;
  }
  if (st == nullptr) {
    FailStream(call, absl::InternalError(absl::StrCat(
                         "server sent ", FrameKindName(meta.kind()),
                         " on unary call ", call->method)));
    return;
  }
  switch (meta.kind()) {
    case wire::HEADERS: {
      absl::Status bad = CheckMetadata(
          meta.metadata(), options_->limits.max_metadata_bytes,
          "response headers from the server", absl::StatusCode::kInternal);
      if (!bad.ok()) {
        FailStream(call, std::move(bad));
        return;
      }
      MutexLock lock(&st->mu);
      st->headers.insert(meta.metadata().begin(), meta.metadata().end());
      return;
    }
    case wire::WINDOW_UPDATE: {
      absl::Status bad;
      {
        MutexLock lock(&st->mu);
        int64_t credit = st->send_credit + meta.window_increment();
        if (meta.window_increment() == 0 ||
            credit > std::numeric_limits<int32_t>::max()) {
          bad = absl::InternalError(absl::StrCat(
              "server sent a bad WINDOW_UPDATE (increment ",
              meta.window_increment(), ") on ", call->method));
        } else {
          st->send_credit = credit;
        }
      }
      if (!bad.ok()) {
        FailStream(call, std::move(bad));
        return;
      }
      PumpStream(meta.call_id());
      return;
    }
    case wire::MESSAGE: {
      if (st->kind == MethodKind::kClientStreaming) {
        FailStream(call, absl::InternalError(absl::StrCat(
                             "server sent a MESSAGE on client-streaming ",
                             call->method)));
        return;
      }
      absl::Status bad;
      {
        MutexLock lock(&st->mu);
        if (st->received >= st->granted) {
          bad = absl::ResourceExhaustedError(absl::StrCat(
              "server exceeded the flow-control window on ", call->method,
              ": ", st->received, " bytes received of ", st->granted,
              " granted"));
        }
        st->received += payload_size + wire::kMessageCreditOverhead;
      }
      std::unique_ptr<google::protobuf::Message> message(
          st->response_prototype->New());
      if (bad.ok() && !ParsePayload(input, payload_size, message.get())) {
        bad = absl::InternalError(absl::StrCat(
            "a MESSAGE of ", call->method, " (", payload_size,
            " bytes) does not parse as ", message->GetTypeName()));
      }
      if (!bad.ok()) {
        FailStream(call, std::move(bad));
        return;
      }
      {
        MutexLock lock(&st->mu);
        st->in.push_back(
            {std::move(message), payload_size + wire::kMessageCreditOverhead});
      }
      if (call->metrics != nullptr) {
        call->metrics->StreamMessageReceived(payload_size);
      }
      st->Wake();
      return;
    }
    default:
      return;
  }
}

}  // namespace internal

// The handle.

ClientStreamBase::ClientStreamBase(
    std::shared_ptr<internal::ClientStreamState> state)
    : state_(std::move(state)) {}

ClientStreamBase::~ClientStreamBase() {
  bool ended;
  {
    MutexLock lock(&state_->mu);
    ended = state_->ended;
  }
  if (!ended) Cancel();
}

std::shared_ptr<internal::ClientStreamState> ClientStreamBase::Start(
    Channel& channel, absl::string_view method, MethodKind kind,
    const google::protobuf::Message* request,
    const google::protobuf::Message& response_prototype,
    const CallOptions& options) {
  auto state = std::make_shared<internal::ClientStreamState>();
  absl::Status pick_error;
  std::shared_ptr<internal::ClientSlot> slot =
      channel.set_->Pick(options, &pick_error);
  const ChannelOptions& copts = channel.options_;
  if (slot != nullptr) {
    state->loop = slot->loop();
    state->call_id = slot->NextCallId();
    state->slot = slot;
  } else {
    state->loop = channel.set_->control_loop();
  }
  state->kind = kind;
  state->response_prototype = &response_prototype;
  state->write_buffer_bytes = copts.stream_write_buffer_bytes;
  state->max_message_bytes = copts.limits.max_message_bytes;
  state->window = std::max(copts.stream_window_bytes, uint32_t{1024});
  {
    MutexLock lock(&state->mu);
    state->send_credit = wire::kInitialStreamWindow;
    state->granted = state->window;
  }
  auto call = std::make_unique<internal::ClientCall>();
  call->id = state->call_id;
  call->method.assign(method.data(), method.size());
  call->headers = options.metadata;
  call->timeout = options.timeout;
  if (options.timeout != absl::InfiniteDuration()) {
    call->deadline = absl::Now() + options.timeout;
  }
  call->stream = state;
  if (channel.metrics_ != nullptr) {
    call->metrics = channel.metrics_->For(method);
    call->metrics_start = internal::LatencyClock::Now();
    call->metrics->Started();
  }
  // Messages of its own: the unary response pointer stays unused.
  call->done = [state](absl::Status s) { state->End(std::move(s)); };
  const bool intercept = !copts.interceptors.empty();
  absl::Status invalid;
  if (kind == MethodKind::kUnary) {
    invalid = absl::InvalidArgumentError(
        "ClientStream is for streaming methods; use Channel::Call()");
  } else if ((kind == MethodKind::kServerStreaming) != (request != nullptr)) {
    invalid = absl::InvalidArgumentError(
        "a server-streaming call takes its request at Open(); other shapes "
        "write their messages");
  } else if (!options.metadata.empty()) {
    invalid = internal::CheckMetadata(
        options.metadata, copts.limits.max_metadata_bytes, "request headers",
        absl::StatusCode::kInvalidArgument);
  }
  if (invalid.ok() && intercept) {
    // Before the trace header: an interceptor may set its own traceparent.
    invalid = internal::InterceptClientCall(
        copts.interceptors, channel.target(), method, /*streaming=*/true,
        &call->headers, call->timeout, &call->done);
    if (invalid.ok() && call->headers != options.metadata) {
      invalid = internal::CheckMetadata(
          call->headers, copts.limits.max_metadata_bytes,
          "request headers (after the channel's interceptors)",
          absl::StatusCode::kInvalidArgument);
    }
  }
  // Trace context (rpc/internal/call_trace.h).
  const trace::TraceContext sent = internal::EnsureTraceparent(
      &call->headers, options.trace, copts.limits.max_metadata_bytes);
  // Inherited deadline and cancellation (rpc/internal/propagation.h).
  std::shared_ptr<internal::ChildCall> child = internal::AdoptParent(
      options, &call->timeout, &call->deadline, &call->done, &invalid);
  if (child != nullptr) {
    child->Track(options.rpcz, method, channel.target(), sent.span_id);
  }
  const bool link = child != nullptr && invalid.ok();
  if (invalid.ok() && request != nullptr) {
    request->SerializeToString(&call->request);
    if (call->metrics != nullptr) call->metrics->AddSentBytes(call->request.size());
  }
  if (slot != nullptr) {
    slot->PostStart(std::move(call), std::move(invalid));
  } else if (!invalid.ok() || !pick_error.ok()) {
    // Failed on the control loop, like any call's callback (recorded now:
    // the closure may outlive the channel's metrics).
    call->RecordEnd(invalid.ok() ? pick_error.code() : invalid.code());
    state->loop->Post([call = std::move(call),
                       why = invalid.ok() ? pick_error : invalid]() mutable {
      call->done(std::move(why));
    });
  } else {
    // Before its operations can run (they read these): no endpoint yet.
    state->parked = true;
    state->set = channel.set_;
    const uint64_t hash = channel.set_->KeyHash(options);
    state->ticket = channel.set_->Park(std::move(call), options.wait_for_ready,
                                       hash);
  }
  if (link) internal::LinkStream(*child, state);
  return state;
}

// A message the server would refuse fails the call (RESOURCE_EXHAUSTED,
// CANCEL to the server) instead of being sent.
absl::Status ClientStreamBase::CheckSize(size_t bytes) {
  internal::ClientStreamState* st = state_.get();
  if (bytes <= st->max_message_bytes) return absl::OkStatus();
  absl::Status why = absl::ResourceExhaustedError(
      absl::StrCat("request message of ", bytes,
                   " bytes exceeds max_message_bytes ", st->max_message_bytes));
  st->Abort(why, /*cancel=*/false);
  return why;
}

bool ClientStreamBase::WriteMessage(const google::protobuf::Message& message) {
  internal::ClientStreamState* st = state_.get();
  if (!st->client_streams()) return false;
  if (!CheckSize(message.ByteSizeLong()).ok()) return false;
  bool post = false;
  {
    MutexLock lock(&st->mu);
    if (!st->CanAcceptLocked()) return false;
    std::string bytes;
    message.SerializeToString(&bytes);
    st->out_bytes += bytes.size() + wire::kMessageCreditOverhead;
    st->out.push_back(std::move(bytes));
    if (!st->pump_scheduled) post = st->pump_scheduled = true;
  }
  if (post) st->PostPump();
  return true;
}

absl::Status ClientStreamBase::WriteMessageBlocking(
    const google::protobuf::Message& message) {
  internal::ClientStreamState* st = state_.get();
  if (st->loop->IsInLoopThread()) {
    return absl::FailedPreconditionError(
        "WriteBlocking() on the channel's I/O thread would deadlock");
  }
  if (!st->client_streams()) {
    return absl::FailedPreconditionError(
        "a server-streaming call sends no messages after its request");
  }
  absl::Status size_ok = CheckSize(message.ByteSizeLong());
  if (!size_ok.ok()) return size_ok;
  std::string bytes;
  message.SerializeToString(&bytes);
  bool post = false;
  {
    MutexLock lock(&st->mu);
    while (!st->CanAcceptLocked()) {
      if (st->ended) {
        return st->status.ok() ? absl::FailedPreconditionError(
                                     "the call has already finished")
                               : st->status;
      }
      if (st->close_send) {
        return absl::FailedPreconditionError("CloseSend() was called");
      }
      st->cv.Wait(&st->mu);
    }
    st->out_bytes += bytes.size() + wire::kMessageCreditOverhead;
    st->out.push_back(std::move(bytes));
    if (!st->pump_scheduled) post = st->pump_scheduled = true;
  }
  if (post) st->PostPump();
  return absl::OkStatus();
}

void ClientStreamBase::CloseSend() {
  internal::ClientStreamState* st = state_.get();
  {
    MutexLock lock(&st->mu);
    if (st->close_send || st->ended || !st->client_streams()) return;
    st->close_send = true;
    if (st->pump_scheduled) return;
    st->pump_scheduled = true;
  }
  st->PostPump();
}

void ClientStreamBase::OnWritable(absl::AnyInvocable<void()> callback) {
  internal::ClientStreamState* st = state_.get();
  {
    MutexLock lock(&st->mu);
    if (!st->CanAcceptLocked() && !st->ended) {
      st->on_writable = std::move(callback);
      return;
    }
  }
  st->loop->Post(std::move(callback));
}

bool ClientStreamBase::TryReadMessage(google::protobuf::Message* message) {
  internal::ClientStreamState* st = state_.get();
  std::unique_ptr<google::protobuf::Message> taken;
  bool grant = false;
  {
    MutexLock lock(&st->mu);
    if (st->in.empty()) return false;
    taken = std::move(st->in.front().message);
    st->consumed_unannounced += st->in.front().bytes;
    st->in.pop_front();
    if (!st->ended && !st->grant_scheduled &&
        st->consumed_unannounced >= st->window / 2) {
      grant = st->grant_scheduled = true;
    }
  }
  message->GetReflection()->Swap(message, taken.get());
  if (grant) {
    st->RunOnSlot(
        [](internal::ClientSlot* s, uint64_t id) { s->GrantStream(id); },
        /*inline_ok=*/true);
  }
  return true;
}

bool ClientStreamBase::ReadMessage(google::protobuf::Message* message) {
  internal::ClientStreamState* st = state_.get();
  if (st->loop->IsInLoopThread()) return TryReadMessage(message);
  {
    MutexLock lock(&st->mu);
    while (st->in.empty() && !st->ended) st->cv.Wait(&st->mu);
  }
  return TryReadMessage(message);
}

bool ClientStreamBase::AtEnd() const {
  MutexLock lock(&state_->mu);
  return state_->in.empty() && state_->ended;
}

void ClientStreamBase::OnReadable(absl::AnyInvocable<void()> callback) {
  internal::ClientStreamState* st = state_.get();
  {
    MutexLock lock(&st->mu);
    if (st->in.empty() && !st->ended) {
      st->on_readable = std::move(callback);
      return;
    }
  }
  st->loop->Post(std::move(callback));
}

void ClientStreamBase::OnDone(absl::AnyInvocable<void(absl::Status)> callback) {
  internal::ClientStreamState* st = state_.get();
  absl::Status status;
  {
    MutexLock lock(&st->mu);
    if (!st->ended) {
      st->on_done = std::move(callback);
      return;
    }
    status = st->status;
  }
  st->loop->Post([callback = std::move(callback),
                  status = std::move(status)]() mutable {
    callback(std::move(status));
  });
}

absl::Status ClientStreamBase::Finish() {
  internal::ClientStreamState* st = state_.get();
  MutexLock lock(&st->mu);
  if (!st->ended && st->loop->IsInLoopThread()) {
    return absl::FailedPreconditionError(
        "Finish() on the channel's I/O thread would deadlock; use OnDone()");
  }
  while (!st->ended) st->cv.Wait(&st->mu);
  return st->status;
}

void ClientStreamBase::Cancel() {
  state_->Abort(absl::CancelledError("cancelled by the client"),
                /*cancel=*/true);
}

Metadata ClientStreamBase::headers() const {
  MutexLock lock(&state_->mu);
  return state_->headers;
}

Metadata ClientStreamBase::trailers() const {
  MutexLock lock(&state_->mu);
  return state_->trailers;
}

}  // namespace bevrpc
