#include "rpc/internal/server_session.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "transport/tls.h"
#include "rpc/internal/metadata_limits.h"
#include "rpc/status.h"
#include "rpc/wire_format.h"

namespace bevrpc::internal {
namespace {

// timeout_us above this (about 292,000 years) is no deadline at all.
constexpr uint64_t kMaxTimeoutUs = uint64_t{1} << 62;

// First bytes of an HTTP request that a server answers (with its pages).
// None starts like wire::kMagic ("BEVR").
constexpr absl::string_view kHttpMethods[] = {
    "GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS "};
constexpr size_t kLongestHttpMethod = 8;  // "OPTIONS ".

}  // namespace

ServerSession::ServerSession(const ServerShared* shared,
                             std::unique_ptr<transport::Connection> conn,
                             absl::AnyInvocable<void(ServerSession*)> on_closed,
                             SessionProtocol protocol)
    : shared_(shared),
      conn_(std::move(conn)),
      on_closed_(std::move(on_closed)),
      decoder_(shared->options.limits),
      budget_timer_(conn_->loop()),
      frame_timer_(conn_->loop()),
      idle_timer_(conn_->loop()),
      out_(conn_.get()),
      fault_rng_(reinterpret_cast<uintptr_t>(this) ^
                 static_cast<uint64_t>(absl::ToInt64Nanoseconds(
                     MonotonicNow()))),
      call_pool_(CallPool::Create(conn_->loop(), &shared->live_call_pools)),
      protocol_(protocol),
      stats_(conn_->peer(), absl::Now()) {
  shared->connection_table.Add(&stats_);
  const ServerOptions& options = shared->options;
  if (options.keepalive_time != absl::InfiniteDuration()) {
    keepalive_ = std::make_unique<Keepalive>(
        conn_.get(), options.keepalive_time, options.keepalive_timeout,
        [this](uint64_t counter) { SendKeepalivePing(counter); },
        [this] { OnKeepaliveTimeout(); });
  }
  if (cancel_defence_on()) {
    cancel_tokens_ = options.early_cancel_burst;
    cancel_tokens_at_ = MonotonicNow();
  }
}

ServerSession::~ServerSession() {
  shared_->connection_table.Remove(&stats_);
  if (counted_http_) {
    shared_->http_connections.fetch_sub(1, std::memory_order_relaxed);
  }
  if (charged_ != 0) shared_->memory->Adjust(-charged_);
  call_pool_->Close();
  // Calls outliving the connection (handlers still running) see it closed.
  streams_.clear();
  auto calls = std::move(calls_);
  for (auto& [id, call] : calls) call->Detach();
}

void ServerSession::Start() {
  if (protocol_ == SessionProtocol::kHttp) {
    BecomeHttp();
    conn_->Start(this);
    return;
  }
  if (protocol_ == SessionProtocol::kRpc) {
    stats_.protocol.store(static_cast<int>(ConnectionProtocol::kRpc),
                          std::memory_order_relaxed);
  }
  conn_->Start(this);
  if (keepalive_ != nullptr) keepalive_->Start();
  if (shared_->options.idle_timeout != absl::InfiniteDuration()) {
    idle_timer_.Start(shared_->options.idle_timeout, [this] { CheckIdle(); });
  }
}

SessionProtocol ServerSession::Sniff(const transport::Buffer& input) {
  char head[kLongestHttpMethod];
  const size_t n = input.Peek(head, sizeof(head));
  const absl::string_view have(head, n);
  bool maybe = false;
  for (absl::string_view method : kHttpMethods) {
    if (n >= method.size()) {
      if (have.substr(0, method.size()) == method) return SessionProtocol::kHttp;
    } else if (method.substr(0, n) == have) {
      maybe = true;
    }
  }
  return maybe ? SessionProtocol::kSniff : SessionProtocol::kRpc;
}

namespace {
// At most one log line per second for refused transports.
bool LogTransportRefusal() {
  static std::atomic<int64_t> last_ns{0};
  const int64_t now = absl::GetCurrentTimeNanos();
  int64_t last = last_ns.load(std::memory_order_relaxed);
  return now - last >= 1000000000 &&
         last_ns.compare_exchange_strong(last, now, std::memory_order_relaxed);
}
}  // namespace

bool ServerSession::CheckTransport(const transport::Buffer& input) {
  first_read_ = false;
  uint8_t first = 0;
  if (input.Peek(&first, 1) != 1) return true;
  if (refuse_plaintext_) {
    if (LogTransportRefusal()) {
      std::cerr << "bevrpc server: plaintext connection from " << conn_->peer()
                << " refused: this port requires TLS" << std::endl;
    }
    closing_ = true;
    if (Sniff(input) != SessionProtocol::kRpc) {
      // An HTTP method (or its beginning): answer in HTTP.
      static constexpr absl::string_view kBody =
          "This server requires TLS: use https://\n";
      conn_->Write([&](transport::Buffer& out) {
        out.Append(absl::StrCat(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
            "Content-Length: ", kBody.size(), "\r\nConnection: close\r\n\r\n",
            kBody));
      });
    } else {
      SendGoAway(absl::UnavailableError(
          "server requires TLS: connect with TLS (e.g. --tls_ca)"));
    }
    conn_->CloseAfterFlush();
    return false;
  }
  if (first == transport::kTlsHandshakeByte && !conn_->is_tls()) {
    if (LogTransportRefusal()) {
      std::cerr << "bevrpc server: TLS handshake on a plaintext port from "
                << conn_->peer() << std::endl;
    }
    // Then answered as any bad magic (GOAWAY INVALID_ARGUMENT, close):
    // those plaintext bytes tell the client's TLS stack at once that this
    // is not TLS ("server speaks plaintext, not TLS").
  }
  return true;
}

void ServerSession::BecomeHttp() {
  protocol_ = SessionProtocol::kHttp;
  stats_.protocol.store(static_cast<int>(ConnectionProtocol::kHttp),
                        std::memory_order_relaxed);
  // No bevrpc frame may go out on an HTTP connection.
  if (keepalive_ != nullptr) keepalive_->Stop();
  keepalive_.reset();
  idle_timer_.Cancel();
  frame_timer_.Cancel();
  http_ = std::make_unique<admin::HttpConnection>(
      conn_.get(), shared_->options.http_limits, &shared_->pages);
  counted_http_ = true;
  const int64_t open =
      shared_->http_connections.fetch_add(1, std::memory_order_relaxed);
  http_->Start();
  const size_t limit = shared_->options.http_limits.max_connections;
  if (static_cast<uint64_t>(open) >= limit) {
    http_->Refuse(absl::StrCat("too many HTTP connections: max_connections ",
                               limit, " (http_limits) are open"));
  }
}

void ServerSession::CountInput(const transport::Buffer& input) {
  const size_t size = input.size();
  if (size > input_left_) bytes_in_ += size - input_left_;
  stats_.bytes_in.store(bytes_in_, std::memory_order_relaxed);
}

void ServerSession::PublishStats(const transport::Buffer* input) {
  if (input != nullptr) input_left_ = input->size();
  // RPC: the unsent output as CheckBudget() last read it (reading the
  // locked output buffer again per callback costs more than this needs).
  const uint64_t unsent = http_ != nullptr
                              ? conn_->output_size()
                              : static_cast<uint64_t>(output_seen_);
  stats_.bytes_out.store(conn_->bytes_written() - unsent,
                         std::memory_order_relaxed);
  stats_.calls_open.store(calls_.size(), std::memory_order_relaxed);
  if (http_ != nullptr) {
    stats_.http_requests.store(http_->requests_served(),
                               std::memory_order_relaxed);
  }
}

absl::Status ServerSession::JoinRateLimitGroup(
    const transport::RateLimitGroup& group) {
  if (rate_limit_group_ == &group) return absl::OkStatus();
  if (rate_limit_group_ != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "connection from ", conn_->peer(),
        " is already in another rate-limit group (an earlier call's)"));
  }
  rate_limit_group_ = &group;
  rate_limit_timer_ = std::make_unique<transport::Timer>(conn_->loop());
  rate_limit_timer_->Start(absl::ZeroDuration(),
                           [this] { EnterRateLimitGroup(); });
  return absl::OkStatus();
}

void ServerSession::EnterRateLimitGroup() {
  if (!closing_) {
    // Fails only for connections without a socket, which stay unlimited.
    conn_->SetRateLimits(nullptr, rate_limit_group_).IgnoreError();
  }
  std::vector<std::pair<RefPtr<ServerCall>, absl::Duration>> calls;
  calls.swap(awaiting_group_);
  for (auto& [call, delay] : calls) {
    // A call that ended meanwhile (cancelled, connection closed) stays
    // unstarted, as with a fault-injection delay.
    if (!call->cancelled()) {
      call->Dispatch(shared_->workers.get(), shared_->stream_workers.get(),
                     delay);
    }
  }
}

void ServerSession::Dispatch(RefPtr<ServerCall> call, absl::Duration delay) {
  if (rate_limit_timer_ != nullptr && rate_limit_timer_->pending()) {
    awaiting_group_.emplace_back(std::move(call), delay);
    return;
  }
  call->Dispatch(shared_->workers.get(), shared_->stream_workers.get(), delay);
}

size_t ServerSession::OnReadable(transport::Buffer& input) {
  CountInput(input);
  if (first_read_ && !CheckTransport(input)) return 0;
  if (protocol_ == SessionProtocol::kSniff) {
    const SessionProtocol sniffed = Sniff(input);
    if (sniffed == SessionProtocol::kSniff) {
      // Too short to tell: bounded by frame_timeout like a partial frame.
      UpdateFrameTimer(input);
      PublishStats(&input);
      return input.size() + 1;
    }
    if (sniffed == SessionProtocol::kHttp) {
      BecomeHttp();
    } else {
      protocol_ = SessionProtocol::kRpc;
      stats_.protocol.store(static_cast<int>(ConnectionProtocol::kRpc),
                            std::memory_order_relaxed);
    }
  }
  if (http_ != nullptr) {
    const size_t wanted = http_->OnReadable(input);
    PublishStats(&input);
    return wanted;
  }
  const size_t wanted = ReadFrames(input);
  PublishStats(&input);
  return wanted;
}

size_t ServerSession::ReadFrames(transport::Buffer& input) {
  if (keepalive_ != nullptr) keepalive_->OnRead();
  read_time_valid_ = false;
  absl::StatusOr<size_t> wanted = decoder_.Decode(input, *this);
  if (!wanted.ok()) {
    ProtocolError(wanted.status());
    return 1;
  }
  // Only between frames: a frame left half-read would run into
  // frame_timeout.
  if (!closing_ && !budget_paused_ && !decoder_.mid_frame() && OverBudget()) {
    // What has been read is not consumed yet: read no more until it is.
    // (Never because of writability: our own unsent output alone must not
    // stop us reading, or two peers could wait for each other forever.)
    budget_paused_ = true;
    conn_->PauseReading();
    // Not reading by our own choice: a PONG could not be seen, so the
    // client must not be declared dead meanwhile.
    if (keepalive_ != nullptr) keepalive_->Stop();
  }
  // The server-wide count hears of this read once its output is flushed
  // (OnOutputDrained(), right after this returns).
  UpdateFrameTimer(input);
  return *wanted;
}

bool ServerSession::WantsFrames() {
  return !closing_ && !budget_paused_ && !OverBudget();
}

bool ServerSession::OverBudget() const {
  // Output as of the last CheckBudget() (the end of the previous read
  // callback, or a drain): reading the locked output buffer per frame
  // costs more than the budget needs to be exact. Answers produced in this
  // read callback count from its end on.
  const size_t limit = shared_->options.max_connection_memory_bytes;
  const int64_t holding = held_ + output_seen_;
  if (limit != 0 && static_cast<size_t>(holding) > limit) return true;
  // One connection holding nothing may always read (a message larger than
  // the server's budget, or a stale server-wide count, never blocks it).
  return holding != 0 && shared_->memory->over();
}

void ServerSession::CheckBudget() {
  output_seen_ = static_cast<int64_t>(conn_->output_size());
  const int64_t now = held_ + output_seen_;
  if (now != charged_) {
    shared_->memory->Adjust(now - charged_);
    charged_ = now;
  }
  if (!budget_paused_) return;
  // Stream messages read by their handlers since the last report: reads
  // report only every few dozen KiB, and a handler that has read
  // everything will not read again until we do.
  bool reclaimed = false;
  for (ServerCall* call : streams_) reclaimed |= call->ReleaseConsumed();
  if (reclaimed) {
    const int64_t held_now = held_ + output_seen_;
    shared_->memory->Adjust(held_now - charged_);
    charged_ = held_now;
  }
  if (!closing_ && OverBudget()) {
    if (!budget_timer_.pending()) {
      budget_timer_.Start(absl::Milliseconds(5), [this] { CheckBudget(); });
    }
    return;
  }
  budget_paused_ = false;
  budget_timer_.Cancel();
  if (!closing_ && !read_closed_) {
    conn_->ResumeReading();
    if (keepalive_ != nullptr) keepalive_->Start();
  }
}

void ServerSession::OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
                            size_t payload_size) {
  // Pings keep a connection alive, not busy: they do not defer idle_timeout.
  if (meta.kind() != wire::PING && meta.kind() != wire::PONG) ++frames_seen_;
  switch (meta.kind()) {
    case wire::REQUEST:
      HandleRequest(meta, input, payload_size);
      return;
    case wire::CANCEL:
      HandleCancel(meta.call_id());
      return;
    case wire::PING:
      if (AcceptPing()) SendPong(input, payload_size);
      return;
    case wire::PONG:
      // Answers our keepalive PING; reading it was the point.
      return;
    case wire::GOAWAY:
      // The client is closing; it will send no new calls. Nothing to do.
      return;
    case wire::RESPONSE:
      ProtocolError(absl::InvalidArgumentError(absl::StrCat(
          "RESPONSE frame (call_id ", meta.call_id(),
          ") sent to a server: only servers send RESPONSE")));
      return;
    case wire::MESSAGE:
    case wire::HALF_CLOSE:
    case wire::WINDOW_UPDATE:
      HandleStreamFrame(meta, input, payload_size);
      return;
    default:
      ProtocolError(absl::InvalidArgumentError(
          absl::StrCat("frame kind ", FrameKindName(meta.kind()),
                       " is not valid here")));
  }
}

void ServerSession::HandleCancel(uint64_t call_id) {
  // A CANCEL for a call that already ended is normal (a race); ignore.
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  RefPtr<ServerCall> call = it->second;
  bool early = false;
  if (cancel_defence_on()) {
    // A call cancelled after half its deadline budget is most likely the
    // client's deadline timer at work (bevrpc's sends CANCEL then), not a
    // change of mind.
    const absl::Duration age = ReadTime() - call->opened_at();
    early = age < shared_->options.early_cancel_time &&
            age < call->timeout() / 2;
  }
  call->Abort(absl::CancelledError("call cancelled by the client"),
              /*send_response=*/false);
  if (early) ChargeEarlyCancel();
}

void ServerSession::ChargeEarlyCancel() {
  const ServerOptions& options = shared_->options;
  const absl::Duration now = ReadTime();
  cancel_tokens_ = std::min<double>(
      options.early_cancel_burst,
      cancel_tokens_ + absl::ToDoubleSeconds(now - cancel_tokens_at_) *
                           options.max_early_cancels_per_second);
  cancel_tokens_at_ = now;
  ++early_cancels_;
  if (cancel_tokens_ >= 1) {
    cancel_tokens_ -= 1;
    return;
  }
  ProtocolError(absl::ResourceExhaustedError(absl::StrCat(
      "too many cancelled calls: the client cancelled ", early_cancels_,
      " calls within early_cancel_time ",
      absl::FormatDuration(options.early_cancel_time),
      " of opening them, more than max_early_cancels_per_second ",
      options.max_early_cancels_per_second, " (early_cancel_burst ",
      options.early_cancel_burst, ") allows")));
}

absl::Duration ServerSession::ReadTime() {
  if (!read_time_valid_) {
    read_time_ = MonotonicNow();
    read_time_valid_ = true;
  }
  return read_time_;
}

void ServerSession::HandleStreamFrame(const wire::FrameMeta& meta,
                                      transport::Buffer& input,
                                      size_t payload_size) {
  auto it = calls_.find(meta.call_id());
  if (it == calls_.end()) {
    // A frame for a call that ended crossed its end on the wire: dropped.
    // One for a call that was never opened is a protocol error.
    if (meta.call_id() == 0 || meta.call_id() > last_call_id_) {
      ProtocolError(absl::InvalidArgumentError(absl::StrCat(
          FrameKindName(meta.kind()), " frame for call ", meta.call_id(),
          ", which was never opened")));
    }
    return;
  }
  RefPtr<ServerCall> call = it->second;
  absl::Status s;
  if (!call->streaming()) {
    s = absl::InvalidArgumentError(absl::StrCat(
        FrameKindName(meta.kind()), " frame on unary call ", meta.call_id(),
        " (", call->method().full_name,
        "): unary calls take exactly one request"));
  } else if (meta.kind() == wire::MESSAGE) {
    s = call->OnStreamMessage(input, payload_size);
  } else if (meta.kind() == wire::HALF_CLOSE) {
    s = call->OnHalfClose();
  } else {
    s = call->OnWindowUpdate(meta.window_increment());
  }
  if (!s.ok()) call->Abort(std::move(s), /*send_response=*/true);
}

void ServerSession::OnWritabilityChanged(bool writable) {
  if (http_ != nullptr) {
    http_->OnWritabilityChanged(writable);
    return;
  }
  if (streams_.empty()) return;
  // A call may end (and leave streams_) while being told.
  std::vector<RefPtr<ServerCall>> streams;
  streams.reserve(streams_.size());
  for (ServerCall* call : streams_) streams.emplace_back(call);
  for (const RefPtr<ServerCall>& call : streams) {
    call->OnConnectionWritable(writable);
  }
}

void ServerSession::OnOversizedFrame(const wire::FrameMeta& meta,
                                     uint64_t payload_size) {
  ++frames_seen_;
  if (meta.kind() == wire::MESSAGE && meta.call_id() != 0 &&
      meta.call_id() <= last_call_id_) {
    // One oversized message fails its stream; the payload is discarded as
    // it arrives and the connection goes on.
    auto it = calls_.find(meta.call_id());
    if (it == calls_.end()) return;  // The call has ended.
    RefPtr<ServerCall> call = it->second;
    call->Abort(absl::ResourceExhaustedError(absl::StrCat(
                    "request message of ", payload_size,
                    " bytes exceeds max_message_bytes ",
                    shared_->options.limits.max_message_bytes)),
                /*send_response=*/true);
    return;
  }
  if (meta.kind() != wire::REQUEST || meta.call_id() == 0) {
    ProtocolError(absl::InvalidArgumentError(absl::StrCat(
        FrameKindName(meta.kind()), " frame payload of ", payload_size,
        " bytes exceeds max_message_bytes ",
        shared_->options.limits.max_message_bytes)));
    return;
  }
  SendError(meta.call_id(),
            absl::ResourceExhaustedError(absl::StrCat(
                "request payload of ", payload_size,
                " bytes exceeds max_message_bytes ",
                shared_->options.limits.max_message_bytes)));
  CountRefused(nullptr, meta.method(), absl::StatusCode::kResourceExhausted);
}

void ServerSession::CountRefused(const MethodDesc* method,
                                 absl::string_view name,
                                 absl::StatusCode code) {
  const ServerMetrics* metrics = shared_->metrics.get();
  if (metrics == nullptr) return;
  CallMetrics* m =
      method != nullptr ? metrics->For(method) : metrics->ForName(name);
  m->Refused(code, MonotonicNow() - ReadTime());
}

absl::Status ServerSession::CheckRequest(const wire::FrameMeta& meta,
                                         const MethodDesc** method) {
  const FrameLimits& limits = shared_->options.limits;
  if (draining_) {
    return absl::UnavailableError(
        "server is shutting down and accepts no new calls");
  }
  if (calls_.contains(meta.call_id())) {
    return absl::InvalidArgumentError(
        absl::StrCat("duplicate call_id ", meta.call_id(),
                     ": a call with this id is still open"));
  }
  const std::string& name = meta.method();
  if (name.size() > limits.max_method_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("method name of ", name.size(),
                     " bytes exceeds max_method_bytes ",
                     limits.max_method_bytes));
  }
  if (!meta.metadata().empty()) {
    absl::Status s =
        CheckMetadata(meta.metadata(), limits.max_metadata_bytes,
                      "request headers", absl::StatusCode::kInvalidArgument);
    if (!s.ok()) return s;
  }
  // Consecutive calls usually go to the same method: skip the hash lookup.
  if (last_method_ != nullptr && last_method_->full_name == name) {
    return CheckConcurrency(method, last_method_);
  }
  auto it = shared_->methods.find(name);
  if (it == shared_->methods.end()) {
    size_t slash = name.find('/');
    if (slash == std::string::npos) {
      return absl::UnimplementedError(absl::StrCat(
          "bad method name \"", name, "\": expected package.Service/Method"));
    }
    std::string service = name.substr(0, slash);
    if (!shared_->services.contains(service)) {
      return absl::UnimplementedError(
          absl::StrCat("unknown service \"", service, "\""));
    }
    return absl::UnimplementedError(absl::StrCat(
        "unknown method \"", name.substr(slash + 1), "\" of service \"",
        service, "\""));
  }
  last_method_ = &it->second;
  last_policy_ = shared_->admission->PolicyFor(last_method_);
  if (shared_->metrics != nullptr) {
    last_metrics_ = shared_->metrics->For(last_method_);
  }
  return CheckConcurrency(method, last_method_);
}

absl::Status ServerSession::CheckConcurrency(const MethodDesc** out,
                                             const MethodDesc* method) {
  // Calls that ended while their handler still runs (cancelled, timed
  // out) keep their slot: cancelling must not make room for more handlers.
  const size_t ended_running = call_pool_->ended_running();
  const size_t limit = shared_->options.max_concurrent_calls_per_connection;
  if (calls_.size() + ended_running >= limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many open calls on this connection: ", calls_.size(),
        " open and ", ended_running,
        " ended whose handlers still run (max_concurrent_calls_per_"
        "connection ",
        limit, ")"));
  }
  *out = method;
  return absl::OkStatus();
}

void ServerSession::HandleRequest(wire::FrameMeta& meta,
                                  transport::Buffer& input,
                                  size_t payload_size) {
  uint64_t call_id = meta.call_id();
  if (call_id == 0) {
    ProtocolError(absl::InvalidArgumentError(
        "REQUEST frame with call_id 0: call ids start at 1"));
    return;
  }
  if (call_id > last_call_id_) last_call_id_ = call_id;
  const MethodDesc* method = nullptr;
  absl::Status s = CheckRequest(meta, &method);
  if (!s.ok()) {
    SendError(call_id, s);
    CountRefused(nullptr, meta.method(), s.code());
    return;
  }
  AdmissionSlot slot;
  absl::Duration delay;
  if (!Admit(call_id, method, &slot, &delay)) return;
  RefPtr<ServerCall> call =
      call_pool_->Acquire(this, call_id, method, conn_->peer(),
                          conn_->peer_identity());
  if (call->client_streams()) {
    // The request messages follow in MESSAGE frames.
    if (payload_size != 0) {
      SendError(call_id, absl::InvalidArgumentError(absl::StrCat(
                             "REQUEST of a ", method->full_name,
                             " call carries a payload: a client-streaming "
                             "call sends its messages in MESSAGE frames")));
      CountRefused(method, {}, absl::StatusCode::kInvalidArgument);
      return;
    }
  } else if (!ParsePayload(input, payload_size, call->request())) {
    SendError(call_id, absl::InvalidArgumentError(absl::StrCat(
                           "request payload (", payload_size,
                           " bytes) does not parse as ",
                           method->request_prototype->GetTypeName())));
    CountRefused(method, {}, absl::StatusCode::kInvalidArgument);
    return;
  }
  // Counted from here on: the call is dispatched, and EndCall() records
  // its end whichever way it ends.
  if (last_metrics_ != nullptr) {
    call->StartMetrics(last_metrics_, ReadTime());
    if (!call->client_streams()) last_metrics_->AddReceivedBytes(payload_size);
  }
  call->NotePayload(payload_size);
  if (!call->client_streams()) {
    // Held until the call ends (the parsed request lives that long).
    call->AddHeldBytes(payload_size);
    held_ += payload_size;
  }
  if (meta.timeout_us() != 0 && meta.timeout_us() <= kMaxTimeoutUs) {
    // Larger budgets (up to 2^64-1 us) mean no deadline: converted to a
    // signed duration they would turn negative.
    call->set_timeout(absl::Microseconds(meta.timeout_us()));
  }
  if (cancel_defence_on()) call->set_opened_at(ReadTime());
  if (!meta.metadata().empty()) {
    call->mutable_metadata()->insert(meta.metadata().begin(),
                                     meta.metadata().end());
  }
  // Its span (the caller's traceparent, or a new trace) and /rpcz.
  call->trace_state().Begin(shared_->rpcz.get(), call->metadata(), ReadTime(),
                            payload_size);
  call->set_admission(std::move(slot));
  calls_.emplace(call_id, call);
  if (call->streaming()) {
    const ServerOptions& options = shared_->options;
    uint32_t client_window = meta.initial_window() != 0
                                 ? meta.initial_window()
                                 : wire::kInitialStreamWindow;
    uint32_t server_window =
        std::max(options.stream_window_bytes, wire::kInitialStreamWindow);
    call->StartStream(client_window, server_window, conn_->writable(),
                      options.stream_write_buffer_bytes,
                      options.limits.max_message_bytes);
    streams_.insert(call.get());
    if (server_window > wire::kInitialStreamWindow && call->client_streams()) {
      SendWindowUpdate(call_id, server_window - wire::kInitialStreamWindow);
    }
  }
  if (!shared_->options.interceptors.empty()) {
    // After the call is open (metrics, trace, budget count it): a refusal
    // ends it the way any call ends.
    absl::Status refused = call->StartInterceptors(
        &shared_->options.interceptors, ReadTime());
    if (!refused.ok()) {
      call->Abort(std::move(refused), /*send_response=*/true);
      return;
    }
  }
  Dispatch(std::move(call), delay);
}

bool ServerSession::Admit(uint64_t call_id, const MethodDesc* method,
                          AdmissionSlot* slot, absl::Duration* delay) {
  // CheckRequest() set last_policy_ for `method`.
  const MethodPolicy* policy = last_policy_;
  *delay = absl::ZeroDuration();
  if (policy != nullptr && policy->abort != nullptr &&
      RollPercent(policy->abort->percent, &fault_rng_)) {
    const FaultAbort& rule = *policy->abort;
    SendError(call_id,
              absl::Status(rule.code,
                           !rule.message.empty()
                               ? rule.message
                               : absl::StrCat("fault injected: ", rule.percent,
                                              "% of calls to ", rule.method,
                                              " are aborted")));
    CountRefused(method, {}, rule.code);
    return false;
  }
  absl::Status s = shared_->admission->Admit(*method, policy, slot);
  if (!s.ok()) {
    SendOverloaded(call_id, s);
    CountRefused(method, {}, s.code());
    return false;
  }
  if (policy != nullptr && policy->delay != nullptr &&
      RollPercent(policy->delay->percent, &fault_rng_)) {
    *delay = policy->delay->delay;
  }
  return true;
}

void ServerSession::SendOverloaded(uint64_t call_id,
                                   const absl::Status& status) {
  ResetPingStrikes();
  wire::FrameMeta& meta = out_.Begin(wire::RESPONSE, call_id);
  meta.set_status_code(static_cast<int32_t>(status.code()));
  meta.set_status_message(std::string(status.message()));
  (*meta.mutable_metadata())[wire::kRetryPushbackMsKey] =
      shared_->admission->pushback_ms();
  out_.Send();
}

absl::StatusCode ServerSession::SendResponse(ServerCall* call,
                                             const absl::Status& status,
                                             bool handler_result) {
  ResetPingStrikes();
  if (handler_result) CreditCompletedCall();
  wire::FrameMeta& meta = out_.Begin(wire::RESPONSE, call->call_id());
  const google::protobuf::Message* payload = nullptr;
  absl::Status effective = status;
  // A server stream's messages went out in MESSAGE frames.
  if (status.ok() && !call->server_streams()) {
    payload = call->response();
    size_t size = payload->ByteSizeLong();
    call->NotePayload(size);
    if (size > shared_->options.limits.max_message_bytes) {
      effective = absl::ResourceExhaustedError(absl::StrCat(
          "response payload of ", size, " bytes exceeds max_message_bytes ",
          shared_->options.limits.max_message_bytes));
      payload = nullptr;
    }
  }
  Metadata trailers = call->TakeTrailers();
  if (!trailers.empty() && !AddTrailers(trailers, &effective)) {
    payload = nullptr;
  }
  meta.set_status_code(static_cast<int32_t>(effective.code()));
  if (!effective.ok()) {
    meta.set_status_message(std::string(effective.message()));
  }
  out_.Send(payload);
  if (payload != nullptr && call->metrics() != nullptr) {
    // Sized above (ByteSizeLong() caches it).
    call->metrics()->AddSentBytes(payload->GetCachedSize());
  }
  return effective.code();
}

bool ServerSession::AddTrailers(const Metadata& trailers,
                                absl::Status* status) {
  absl::Status bad =
      CheckMetadata(trailers, shared_->options.limits.max_metadata_bytes,
                    "response trailers", absl::StatusCode::kInternal);
  if (bad.ok()) {
    out_.meta().mutable_metadata()->insert(trailers.begin(), trailers.end());
    return true;
  }
  // The call fails rather than reach the client without its trailers.
  if (!status->ok()) {
    bad = absl::Status(bad.code(),
                       absl::StrCat(bad.message(), " (the call's status was ",
                                    status->ToString(), ")"));
  }
  *status = std::move(bad);
  return false;
}

void ServerSession::RemoveCall(uint64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  held_ -= it->second->TakeHeldBytes();
  streams_.erase(it->second.get());
  calls_.erase(it);
  stats_.calls_open.store(calls_.size(), std::memory_order_relaxed);
  if (draining_) MaybeFinishDrain();
  if (read_closed_) MaybeCloseAfterReadClosed();
  if (budget_paused_) CheckBudget();
}

bool ServerSession::OnReadClosed() {
  if (http_ != nullptr) return http_->OnReadClosed();
  // The client sent everything it will send. Calls already read are still
  // answered (a client may shut down its side after its last request);
  // streams still expecting client messages can never get them.
  read_closed_ = true;
  frame_timer_.Cancel();
  if (keepalive_ != nullptr) keepalive_->Stop();  // No PONG can come.
  std::vector<RefPtr<ServerCall>> starved;
  for (ServerCall* call : streams_) {
    if (call->client_streams() && !call->StreamHalfClosed()) {
      starved.emplace_back(call);
    }
  }
  for (const RefPtr<ServerCall>& call : starved) {
    call->Abort(absl::CancelledError(
                    "the client closed its side of the connection before "
                    "ending its message stream"),
                /*send_response=*/true);
  }
  MaybeCloseAfterReadClosed();
  return true;
}

void ServerSession::MaybeCloseAfterReadClosed() {
  if (!calls_.empty() || closing_) return;
  closing_ = true;
  conn_->CloseAfterFlush();
}

void ServerSession::SendStreamMessage(uint64_t call_id,
                                      const google::protobuf::Message* message,
                                      absl::string_view bytes) {
  ResetPingStrikes();
  out_.Begin(wire::MESSAGE, call_id);
  if (message != nullptr) {
    out_.Send(message);
  } else {
    out_.Send(bytes);
  }
}

absl::Status ServerSession::SendHeaders(uint64_t call_id,
                                       const Metadata& headers) {
  absl::Status bad =
      CheckMetadata(headers, shared_->options.limits.max_metadata_bytes,
                    "response headers", absl::StatusCode::kInternal);
  if (!bad.ok()) return bad;
  ResetPingStrikes();
  out_.Begin(wire::HEADERS, call_id)
      .mutable_metadata()
      ->insert(headers.begin(), headers.end());
  out_.Send();
  return absl::OkStatus();
}

void ServerSession::SendWindowUpdate(uint64_t call_id, uint32_t increment) {
  out_.Begin(wire::WINDOW_UPDATE, call_id).set_window_increment(increment);
  out_.Send();
}

void ServerSession::SendError(uint64_t call_id, const absl::Status& status) {
  ResetPingStrikes();
  wire::FrameMeta& meta = out_.Begin(wire::RESPONSE, call_id);
  meta.set_status_code(static_cast<int32_t>(status.code()));
  meta.set_status_message(std::string(status.message()));
  out_.Send();
}

void ServerSession::SendPong(transport::Buffer& input, size_t payload_size) {
  conn_->Write([&](transport::Buffer& out) {
    AppendPong(out, input, payload_size);
  });
}

bool ServerSession::AcceptPing() {
  const ServerOptions& options = shared_->options;
  absl::Duration now = MonotonicNow();
  bool too_soon = now - last_ping_ < options.min_ping_interval;
  last_ping_ = now;
  if (!too_soon || ++ping_strikes_ <= options.max_ping_strikes) return true;
  ProtocolError(absl::ResourceExhaustedError(absl::StrCat(
      "too many pings: ", ping_strikes_,
      " PINGs came sooner than min_ping_interval ",
      absl::FormatDuration(options.min_ping_interval),
      " after the previous one, with no data sent in between "
      "(max_ping_strikes ",
      options.max_ping_strikes, ")")));
  return false;
}

void ServerSession::SendKeepalivePing(uint64_t counter) {
  if (closing_) return;  // Output may be half-closed already.
  conn_->Write([&](transport::Buffer& out) { AppendPing(out, counter); });
}

void ServerSession::OnKeepaliveTimeout() {
  if (closing_) return;  // Closing anyway, within its linger.
  closing_ = true;
  // No GOAWAY: the peer is presumed gone, and a stuck one would not read it.
  conn_->Close(absl::UnavailableError(absl::StrCat(
      "keepalive timeout: no answer from ", conn_->peer(), " within ",
      absl::FormatDuration(keepalive_->timeout()))));
}

void ServerSession::SendGoAway(const absl::Status& status) {
  wire::FrameMeta& meta = out_.Begin(wire::GOAWAY);
  meta.set_last_call_id(last_call_id_);
  meta.set_status_code(static_cast<int32_t>(status.code()));
  meta.set_status_message(std::string(status.message()));
  out_.Send();
}

void ServerSession::ProtocolError(const absl::Status& status) {
  if (closing_) return;
  closing_ = true;
  SendGoAway(status);
  conn_->CloseAfterFlush();
}

void ServerSession::UpdateFrameTimer(const transport::Buffer& input) {
  // Bytes of a next frame waiting while reading is paused for the budget
  // are ours to consume, not the client's to finish.
  bool partial = decoder_.mid_frame() || (!input.empty() && !budget_paused_);
  if (partial && !frame_timer_.pending() && !closing_) {
    frame_timer_.Start(shared_->options.frame_timeout, [this] {
      ProtocolError(absl::DeadlineExceededError(absl::StrCat(
          "frame not completed within frame_timeout ",
          absl::FormatDuration(shared_->options.frame_timeout))));
    });
  } else if (!partial && frame_timer_.pending()) {
    frame_timer_.Cancel();
  }
}

void ServerSession::CheckIdle() {
  if (closing_) return;
  if (calls_.empty() && frames_seen_ == frames_at_last_idle_check_) {
    closing_ = true;
    SendGoAway(absl::OkStatus());
    conn_->CloseAfterFlush();
    return;
  }
  frames_at_last_idle_check_ = frames_seen_;
  idle_timer_.Start(shared_->options.idle_timeout, [this] { CheckIdle(); });
}

void ServerSession::BeginDrain() {
  // HTTP goes on (a health checker sees 503) until FinishHttp().
  if (http_ != nullptr) return;
  if (draining_ || closing_) return;
  draining_ = true;
  SendGoAway(absl::OkStatus());
  MaybeFinishDrain();
}

void ServerSession::MaybeFinishDrain() {
  if (!calls_.empty() || closing_) return;
  closing_ = true;
  conn_->CloseAfterFlush();
}

void ServerSession::FinishHttp() {
  if (http_ != nullptr) http_->Finish();
}

void ServerSession::AbortCalls() {
  if (http_ != nullptr) return;
  auto calls = calls_;  // Abort() removes entries.
  for (auto& [id, call] : calls) {
    call->Abort(absl::UnavailableError(
                    "server shut down before the call finished"),
                /*send_response=*/true);
  }
  if (!closing_) {
    closing_ = true;
    conn_->CloseAfterFlush();
  }
}

void ServerSession::CloseNow() {
  closing_ = true;
  conn_->Close(absl::UnavailableError("server stopped"));
}

void ServerSession::OnClosed(const absl::Status& why) {
  closing_ = true;
  if (http_ != nullptr) http_->OnClosed();
  frame_timer_.Cancel();
  idle_timer_.Cancel();
  budget_timer_.Cancel();
  if (keepalive_ != nullptr) keepalive_->Stop();
  streams_.clear();
  auto calls = std::move(calls_);
  calls_.clear();
  for (auto& [id, call] : calls) call->Detach();
  on_closed_(this);
}

}  // namespace bevrpc::internal
