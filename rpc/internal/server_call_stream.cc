// ServerCall's streaming half: the per-call credit window, the queues, and
// the ServerStream handle. The rules are in docs/protocol.md ("Streaming
// calls").
//
// Locking: stream_ is guarded by mu_. Frames are written on the loop thread
// only, and never while mu_ is held (a write can flip the connection's
// writability, which calls back into OnConnectionWritable()).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/frame_codec.h"
#include "rpc/wire_format.h"
#include "rpc/internal/server_call.h"
#include "rpc/internal/server_session.h"
#include "rpc/server_stream.h"

namespace bevrpc::internal {
namespace {

const char* KindName(MethodKind kind) {
  switch (kind) {
    case MethodKind::kUnary:
      return "unary";
    case MethodKind::kServerStreaming:
      return "server-streaming";
    case MethodKind::kClientStreaming:
      return "client-streaming";
    case MethodKind::kBidiStreaming:
      return "bidirectional";
  }
  return "?";
}

// A handler writing on the loop thread gets Write() == false (then
// OnWritable) after this many messages, until the loop has turned. Credit
// and the write buffer bound the bytes, not the messages: empty messages
// cost neither, and a handler writing them while the client reads would
// otherwise keep the loop from ever reading again (the client's CANCEL or
// EOF, other connections).
constexpr uint32_t kMaxLoopBurst = 1024;

}  // namespace

void ServerCall::StartStream(uint32_t client_window, uint32_t server_window,
                             bool conn_writable, size_t write_buffer_bytes,
                             size_t max_message_bytes) {
  MutexLock lock(&mu_);
  Stream& st = stream_;
  st.max_message_bytes = max_message_bytes;
  st.send_credit = client_window;
  st.window = server_window;
  // The protocol's initial grant, plus the WINDOW_UPDATE the session sends
  // with the call's first frames when our window is larger.
  st.granted = client_streams() ? std::max(server_window,
                                           wire::kInitialStreamWindow)
                                : wire::kInitialStreamWindow;
  st.conn_writable = conn_writable;
  st.write_buffer_bytes = write_buffer_bytes;
  // Server streaming: the REQUEST carried the whole client side.
  st.half_closed = !client_streams();
}

void ServerCall::AddHeader(std::string key, std::string value) {
  MutexLock lock(&mu_);
  stream_.headers[std::move(key)] = std::move(value);
  headers_added_.store(true, std::memory_order_release);
}

bool ServerCall::CanAcceptLocked() const {
  const Stream& st = stream_;
  return !st.ended && !st.finishing && st.conn_writable &&
         st.out_bytes < st.write_buffer_bytes &&
         st.loop_burst < kMaxLoopBurst;
}

bool ServerCall::CheckOutgoingSize(size_t bytes) {
  size_t limit;
  {
    MutexLock lock(&mu_);
    limit = stream_.max_message_bytes;
  }
  if (bytes <= limit) return true;
  absl::Status why = absl::ResourceExhaustedError(absl::StrCat(
      "response message of ", bytes, " bytes exceeds max_message_bytes ",
      limit));
  loop_->Post([self = RefPtr<ServerCall>(this), why = std::move(why)] {
    self->Abort(why, /*send_response=*/true);
  });
  return false;
}

bool ServerCall::StreamWrite(const google::protobuf::Message& message) {
  if (!server_streams()) return false;
  if (!CheckOutgoingSize(message.ByteSizeLong())) return false;
  const bool on_loop = loop_->IsInLoopThread();
  enum class Then { kNothing, kSendNow, kPump, kPost } then = Then::kNothing;
  bool post_reset = false;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    if (!CanAcceptLocked()) return false;
    if (on_loop && ++st.loop_burst == kMaxLoopBurst &&
        !st.burst_reset_posted) {
      st.burst_reset_posted = true;
      post_reset = true;
    }
    if (on_loop && st.out.empty() && st.send_credit > 0 &&
        session_ != nullptr) {
      // Fast path: nothing queued ahead and credit left, on the loop: the
      // message is serialized straight into the connection's output.
      st.send_credit -= static_cast<int64_t>(message.ByteSizeLong() +
                                             wire::kMessageCreditOverhead);
      then = Then::kSendNow;
    } else {
      std::string bytes;
      message.SerializeToString(&bytes);
      st.out_bytes += bytes.size() + wire::kMessageCreditOverhead;
      st.out.push_back(std::move(bytes));
      if (on_loop) {
        then = Then::kPump;
      } else if (!st.pump_scheduled) {
        st.pump_scheduled = true;
        then = Then::kPost;
      }
    }
  }
  if (post_reset) PostBurstReset();
  switch (then) {
    case Then::kSendNow:
      SendHeadersOnce();
      if (ended_) return false;  // The headers were over the limit.
      session_->SendStreamMessage(call_id_, &message, absl::string_view());
      // Sized just above (ByteSizeLong() caches it).
      if (metrics_ != nullptr) {
        metrics_->StreamMessageSent(message.GetCachedSize());
      }
      break;
    case Then::kPump:
      Pump();
      break;
    case Then::kPost:
      PostPump();
      break;
    case Then::kNothing:
      break;
  }
  return true;
}

absl::Status ServerCall::StreamWriteBlocking(
    const google::protobuf::Message& message) {
  if (loop_->IsInLoopThread()) {
    return absl::FailedPreconditionError(
        "WriteBlocking() on the call's I/O thread would deadlock; use "
        "Write() and OnWritable()");
  }
  if (!server_streams()) {
    return absl::FailedPreconditionError(absl::StrCat(
        method_->full_name, " is ", KindName(method_->kind),
        ": the server sends no message stream"));
  }
  const size_t size = message.ByteSizeLong();
  if (!CheckOutgoingSize(size)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "message of ", size, " bytes exceeds max_message_bytes"));
  }
  std::string bytes;
  message.SerializeToString(&bytes);
  bool post = false;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    while (!CanAcceptLocked()) {
      if (st.ended) return st.end_status.ok()
                               ? absl::FailedPreconditionError(
                                     "the call has already finished")
                               : st.end_status;
      if (st.finishing) {
        return absl::FailedPreconditionError("the call has already finished");
      }
      stream_cv_.Wait(&mu_);
    }
    st.out_bytes += bytes.size() + wire::kMessageCreditOverhead;
    st.out.push_back(std::move(bytes));
    if (!st.pump_scheduled) post = st.pump_scheduled = true;
  }
  if (post) PostPump();
  return absl::OkStatus();
}

void ServerCall::PostPump() {
  loop_->Post([self = RefPtr<ServerCall>(this)] { self->Pump(); });
}

void ServerCall::PostBurstReset() {
  loop_->Post([self = RefPtr<ServerCall>(this)] {
    {
      MutexLock lock(&self->mu_);
      self->stream_.loop_burst = 0;
      self->stream_.burst_reset_posted = false;
    }
    self->WakeStream(/*writable=*/true, /*readable=*/false);
  });
}

void ServerCall::StreamOnWritable(absl::AnyInvocable<void()> cb) {
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    if (!CanAcceptLocked() && !st.ended) {
      st.on_writable = std::move(cb);
      return;
    }
  }
  loop_->Post(std::move(cb));
}

bool ServerCall::PopInboundLocked(google::protobuf::Message* message,
                                  std::unique_ptr<google::protobuf::Message>*
                                      taken,
                                  bool* grant) {
  Stream& st = stream_;
  if (st.in.empty()) return false;
  *taken = std::move(st.in.front().message);
  st.consumed_unannounced += st.in.front().bytes;
  st.consumed_unreleased += st.in.front().bytes;
  st.in.pop_front();
  // Credit goes back at half the window; the memory budget hears of reads
  // every kReleaseBytes (and the session reclaims the rest itself while it
  // is paused: ReleaseConsumed()).
  if (!st.ended && !st.grant_scheduled &&
      (st.consumed_unannounced >= st.window / 2 ||
       st.consumed_unreleased >= kReleaseBytes)) {
    st.grant_scheduled = true;
    *grant = true;
  }
  return true;
}

void ServerCall::FinishRead(google::protobuf::Message* message,
                            std::unique_ptr<google::protobuf::Message> taken,
                            bool grant) {
  message->GetReflection()->Swap(message, taken.get());
  // `taken` now holds the caller's previous message: kept as a spare
  // unless its buffers are large.
  if (taken->SpaceUsedLong() <= kMaxKeptPayloadBytes) {
    taken->Clear();
    MutexLock lock(&mu_);
    if (stream_.spare.size() < kMaxSpareMessages) {
      stream_.spare.push_back(std::move(taken));
    }
  }
  if (!grant) return;
  if (loop_->IsInLoopThread()) {
    GrantConsumed();
  } else {
    loop_->Post([self = RefPtr<ServerCall>(this)] { self->GrantConsumed(); });
  }
}

bool ServerCall::StreamTryRead(google::protobuf::Message* message) {
  std::unique_ptr<google::protobuf::Message> taken;
  bool grant = false;
  {
    MutexLock lock(&mu_);
    if (!PopInboundLocked(message, &taken, &grant)) return false;
  }
  FinishRead(message, std::move(taken), grant);
  return true;
}

bool ServerCall::StreamReadBlocking(google::protobuf::Message* message) {
  if (loop_->IsInLoopThread()) return false;  // Would deadlock.
  std::unique_ptr<google::protobuf::Message> taken;
  bool grant = false;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    while (st.in.empty() && !st.half_closed && !st.ended) {
      stream_cv_.Wait(&mu_);
    }
    if (!PopInboundLocked(message, &taken, &grant)) return false;
  }
  FinishRead(message, std::move(taken), grant);
  return true;
}

bool ServerCall::StreamHalfClosed() {
  MutexLock lock(&mu_);
  return stream_.half_closed;
}

bool ServerCall::StreamAtEnd() {
  MutexLock lock(&mu_);
  const Stream& st = stream_;
  return st.in.empty() && (st.half_closed || st.ended);
}

void ServerCall::StreamOnReadable(absl::AnyInvocable<void()> cb) {
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    if (st.in.empty() && !st.half_closed && !st.ended) {
      st.on_readable = std::move(cb);
      return;
    }
  }
  loop_->Post(std::move(cb));
}

void ServerCall::GrantConsumed() {
  uint64_t n;
  bool grant = true;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    st.grant_scheduled = false;
    n = st.consumed_unannounced;
    st.consumed_unannounced = 0;
    // Nothing more will arrive after the end or a HALF_CLOSE: no credit
    // is needed.
    grant = !st.ended && !st.half_closed;
    if (grant) st.granted += n;
  }
  const bool released = ReleaseConsumed();
  if (session_ != nullptr) {
    if (grant && n > 0) {
      session_->SendWindowUpdate(call_id_, static_cast<uint32_t>(n));
    }
    if (released) session_->CheckBudget();
  }
}

bool ServerCall::ReleaseConsumed() {
  uint64_t consumed;
  {
    MutexLock lock(&mu_);
    consumed = stream_.consumed_unreleased;
    stream_.consumed_unreleased = 0;
  }
  // Read by the handler: no longer held against the memory budget.
  const size_t release = std::min<size_t>(consumed, held_bytes_);
  if (release == 0) return false;
  held_bytes_ -= release;
  if (session_ != nullptr) session_->Charge(-static_cast<int64_t>(release));
  return true;
}

void ServerCall::SendHeadersOnce() {
  // Most calls set no headers: no lock for them.
  if (!headers_added_.load(std::memory_order_acquire)) return;
  Metadata headers;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    if (st.headers_sent) return;
    st.headers_sent = true;
    if (st.headers.empty()) return;
    headers.swap(st.headers);
  }
  if (session_ == nullptr) return;
  absl::Status s = session_->SendHeaders(call_id_, headers);
  // Not sent (over max_metadata_bytes): the call fails rather than go on
  // without the headers its handler set. A no-op if it is ending anyway.
  if (!s.ok()) Abort(std::move(s), /*send_response=*/true);
}

void ServerCall::Pump() {
  while (true) {
    std::string bytes;
    {
      MutexLock lock(&mu_);
      Stream& st = stream_;
      st.pump_scheduled = false;
      if (session_ == nullptr || st.ended) return;
      if (st.out.empty() || st.send_credit <= 0 || !st.conn_writable) break;
      bytes = std::move(st.out.front());
      st.out.pop_front();
      st.out_bytes -= bytes.size() + wire::kMessageCreditOverhead;
      st.send_credit -=
          static_cast<int64_t>(bytes.size() + wire::kMessageCreditOverhead);
    }
    SendHeadersOnce();
    if (ended_) return;  // The headers were over the limit.
    session_->SendStreamMessage(call_id_, nullptr, bytes);
    if (metrics_ != nullptr) metrics_->StreamMessageSent(bytes.size());
  }
  absl::Status final_status;
  bool finish = false;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    if (st.finishing && st.out.empty()) {
      finish = true;
      final_status = st.final_status;
    }
  }
  if (finish) {
    SendFinal(final_status);
    return;
  }
  WakeStream(/*writable=*/true, /*readable=*/false);
}

void ServerCall::WakeStream(bool writable, bool readable) {
  absl::AnyInvocable<void()> on_writable;
  absl::AnyInvocable<void()> on_readable;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    if (writable && st.on_writable && (CanAcceptLocked() || st.ended)) {
      on_writable = std::move(st.on_writable);
      st.on_writable = nullptr;
    }
    if (readable && st.on_readable &&
        (!st.in.empty() || st.half_closed || st.ended)) {
      on_readable = std::move(st.on_readable);
      st.on_readable = nullptr;
    }
  }
  stream_cv_.SignalAll();
  if (on_writable) on_writable();
  if (on_readable) on_readable();
}

absl::Status ServerCall::OnStreamMessage(transport::Buffer& input,
                                         size_t payload_size) {
  if (!client_streams()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MESSAGE frame on ", KindName(method_->kind), " call ", call_id_,
        " (", method_->full_name, "): the client sends only its request"));
  }
  std::unique_ptr<google::protobuf::Message> message;
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    if (st.half_closed) {
      return absl::InvalidArgumentError(absl::StrCat(
          "MESSAGE frame after HALF_CLOSE on call ", call_id_));
    }
    if (st.received >= st.granted) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "flow-control window exceeded: call ", call_id_, " sent a MESSAGE "
          "with ", st.received, " bytes received of ", st.granted,
          " granted"));
    }
    st.received += payload_size + wire::kMessageCreditOverhead;
    if (!st.spare.empty()) {
      message = std::move(st.spare.back());
      st.spare.pop_back();
    }
  }
  if (message == nullptr) message.reset(method_->request_prototype->New());
  if (!ParsePayload(input, payload_size, message.get())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MESSAGE payload (", payload_size, " bytes) does not parse as ",
        method_->request_prototype->GetTypeName()));
  }
  // Credit and memory budget alike: empty messages are not free.
  const size_t cost = payload_size + wire::kMessageCreditOverhead;
  {
    MutexLock lock(&mu_);
    stream_.in.push_back(Inbound{std::move(message), cost});
  }
  // Held against the memory budget until the handler reads it.
  held_bytes_ += cost;
  NotePayload(payload_size);
  if (metrics_ != nullptr) metrics_->StreamMessageReceived(payload_size);
  if (session_ != nullptr) session_->Charge(static_cast<int64_t>(cost));
  WakeStream(/*writable=*/false, /*readable=*/true);
  return absl::OkStatus();
}

absl::Status ServerCall::OnHalfClose() {
  if (!client_streams()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HALF_CLOSE frame on ", KindName(method_->kind), " call ", call_id_,
        " (", method_->full_name, "): its REQUEST closed the client's side"));
  }
  {
    MutexLock lock(&mu_);
    if (stream_.half_closed) {
      return absl::InvalidArgumentError(
          absl::StrCat("HALF_CLOSE frame twice on call ", call_id_));
    }
    stream_.half_closed = true;
  }
  WakeStream(/*writable=*/false, /*readable=*/true);
  return absl::OkStatus();
}

absl::Status ServerCall::OnWindowUpdate(uint32_t increment) {
  if (increment == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("WINDOW_UPDATE with increment 0 on call ", call_id_));
  }
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    int64_t credit = st.send_credit + increment;
    if (credit > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "WINDOW_UPDATE on call ", call_id_, " takes the send window to ",
          credit, " bytes, over the maximum 2^31-1"));
    }
    st.send_credit = credit;
  }
  Pump();
  return absl::OkStatus();
}

void ServerCall::OnConnectionWritable(bool writable) {
  {
    MutexLock lock(&mu_);
    stream_.conn_writable = writable;
  }
  if (writable) Pump();
}

bool ServerCall::BeginFinishStream(const absl::Status& status) {
  MutexLock lock(&mu_);
  Stream& st = stream_;
  if (st.finishing) return false;  // Finished already; this one is late.
  st.finishing = true;
  if (st.out.empty()) return true;
  st.final_status = status;  // Pump() sends it after the queue.
  return false;
}

void ServerCall::EndStream(const absl::Status& why) {
  {
    MutexLock lock(&mu_);
    Stream& st = stream_;
    st.ended = true;
    st.end_status = why;
    st.out.clear();
    st.out_bytes = 0;
  }
  WakeStream(/*writable=*/true, /*readable=*/true);
}

void ServerCall::ResetStream() {
  if (method_ == nullptr || !streaming()) return;  // Untouched.
  MutexLock lock(&mu_);
  Stream& st = stream_;
  // Field by field: a fresh std::deque would allocate.
  st.out.clear();
  st.out_bytes = 0;
  st.write_buffer_bytes = 0;
  st.send_credit = 0;
  st.conn_writable = true;
  st.pump_scheduled = false;
  st.finishing = false;
  st.loop_burst = 0;
  st.burst_reset_posted = false;
  st.final_status = absl::OkStatus();
  st.on_writable = nullptr;
  st.headers.clear();
  st.headers_sent = false;
  for (Inbound& in : st.in) {
    if (st.spare.size() >= kMaxSpareMessages) break;
    in.message->Clear();
    st.spare.push_back(std::move(in.message));
  }
  st.in.clear();
  st.granted = st.received = st.consumed_unannounced = 0;
  st.consumed_unreleased = 0;
  st.window = 0;
  st.half_closed = false;
  st.grant_scheduled = false;
  st.on_readable = nullptr;
  st.ended = false;
  st.end_status = absl::OkStatus();
}

}  // namespace bevrpc::internal

namespace bevrpc {

ServerStream::ServerStream(ServerContext& ctx) : call_(ctx.call_) {}
ServerStream::ServerStream(const ServerStream& other) = default;
ServerStream::ServerStream(ServerStream&& other) noexcept = default;
ServerStream& ServerStream::operator=(ServerStream other) noexcept {
  call_ = std::move(other.call_);
  return *this;
}
ServerStream::~ServerStream() = default;

bool ServerStream::Write(const google::protobuf::Message& message) {
  return call_ != nullptr && call_->StreamWrite(message);
}
absl::Status ServerStream::WriteBlocking(
    const google::protobuf::Message& message) {
  if (call_ == nullptr) return absl::FailedPreconditionError("no call");
  return call_->StreamWriteBlocking(message);
}
void ServerStream::OnWritable(absl::AnyInvocable<void()> callback) {
  if (call_ != nullptr) call_->StreamOnWritable(std::move(callback));
}
bool ServerStream::TryRead(google::protobuf::Message* message) {
  return call_ != nullptr && call_->StreamTryRead(message);
}
bool ServerStream::ReadBlocking(google::protobuf::Message* message) {
  return call_ != nullptr && call_->StreamReadBlocking(message);
}
bool ServerStream::AtEnd() const {
  return call_ == nullptr || call_->StreamAtEnd();
}
void ServerStream::OnReadable(absl::AnyInvocable<void()> callback) {
  if (call_ != nullptr) call_->StreamOnReadable(std::move(callback));
}

}  // namespace bevrpc
