#include "rpc/internal/client_slot.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/internal/client_stream_state.h"
#include "rpc/internal/endpoint_set.h"
#include "rpc/internal/metadata_limits.h"
#include "rpc/status.h"
#include "rpc/wire_format.h"

namespace bevrpc::internal {

// ---------------------------------------------------------------------------
// ClientConnection

ClientConnection::ClientConnection(ClientSlot* slot,
                                   const ChannelOptions* options)
    : slot_(slot), options_(options), decoder_(options->limits) {}

absl::Status ClientConnection::Connect(transport::EventLoop* loop,
                                       const transport::SocketAddress& address,
                                       const transport::TlsContext* tls,
                                       const std::string& tls_host) {
  auto on_connected = [this](absl::Status s) { OnConnected(std::move(s)); };
  auto conn =
      tls != nullptr
          ? transport::Connection::ConnectTls(
                loop, address, options_->connection, options_->connect_timeout,
                *tls, tls_host, std::move(on_connected))
          : transport::Connection::Connect(loop, address, options_->connection,
                                           options_->connect_timeout,
                                           std::move(on_connected));
  if (!conn.ok()) return conn.status();
  conn_ = *std::move(conn);
  out_.set_connection(conn_.get());
  return absl::OkStatus();
}

void ClientConnection::OnConnected(absl::Status status) {
  if (status.ok()) {
    ready_ = true;
    conn_->Start(this);
    if (options_->keepalive_time != absl::InfiniteDuration()) {
      keepalive_ = std::make_unique<Keepalive>(
          conn_.get(), options_->keepalive_time, options_->keepalive_timeout,
          [this](uint64_t counter) {
            if (closed_) return;
            conn_->Write(
                [&](transport::Buffer& out) { AppendPing(out, counter); });
          },
          [this] { OnKeepaliveTimeout(); });
      keepalive_->Start();
    }
  } else {
    closed_ = true;
    ReleaseSent();
    if (status.code() == absl::StatusCode::kDeadlineExceeded) {
      // A connect timeout is a transport failure, not the call's deadline.
      status = absl::UnavailableError(status.message());
    }
  }
  slot_->OnConnected(this, status);
}

void ClientConnection::OnKeepaliveTimeout() {
  // Every open call fails with this; the slot opens a new connection for
  // new calls.
  Close(absl::UnavailableError(absl::StrCat(
      "keepalive timeout: no answer from ", conn_->peer(), " within ",
      absl::FormatDuration(options_->keepalive_timeout))));
}

ClientConnection::~ClientConnection() {
  closed_ = true;
  ReleaseSent();
}

void ClientConnection::ReleaseSent() {
  if (unsent_head_ == unsent_.size()) return;
  // Once closed, whatever was unsent will never be: all of it goes back.
  const uint64_t sent = (closed_ || conn_ == nullptr)
                            ? ~uint64_t{0}
                            : conn_->bytes_sent();
  size_t bytes = 0;
  while (unsent_head_ < unsent_.size() && unsent_[unsent_head_].end <= sent) {
    bytes += unsent_[unsent_head_++].bytes;
  }
  if (unsent_head_ == unsent_.size()) {
    unsent_.clear();
    unsent_head_ = 0;
  } else if (unsent_head_ > 1024 && unsent_head_ * 2 > unsent_.size()) {
    unsent_.erase(unsent_.begin(), unsent_.begin() + unsent_head_);
    unsent_head_ = 0;
  }
  if (bytes != 0) slot_->unsent_budget()->Release(bytes);
}

void ClientConnection::OnWritabilityChanged(bool writable) {
  if (stream_ids_.empty()) return;
  std::vector<uint64_t> ids;
  ids.reserve(stream_ids_.size());
  for (uint64_t id : stream_ids_) {
    if (ids_.contains(id)) ids.push_back(id);
  }
  if (ids.size() != stream_ids_.size()) {
    stream_ids_ = absl::flat_hash_set<uint64_t>(ids.begin(), ids.end());
  }
  for (uint64_t id : ids) slot_->OnStreamWritability(id, writable);
}

void ClientConnection::Send(ClientCall* call) {
  call->conn = this;
  ids_.insert(call->id);
  wire::FrameMeta& meta = out_.Begin(wire::REQUEST, call->id);
  meta.set_method(call->method);
  if (call->deadline != absl::InfiniteFuture()) {
    int64_t us = absl::ToInt64Microseconds(call->deadline - absl::Now());
    meta.set_timeout_us(static_cast<uint64_t>(std::max<int64_t>(us, 1)));
  }
  if (!call->headers.empty()) {
    meta.mutable_metadata()->insert(call->headers.begin(),
                                         call->headers.end());
  }
  if (call->stream != nullptr &&
      call->stream->window != wire::kInitialStreamWindow) {
    meta.set_initial_window(call->stream->window);
  }
  out_.Send(call->request);
  if (call->charged != 0) {
    unsent_.push_back({conn_->bytes_written(), call->charged});
    call->charged = 0;
  }
  if (call->stream != nullptr) {
    stream_ids_.insert(call->id);
    slot_->OnStreamWritability(call->id, conn_->writable());
    slot_->PumpStream(call->id);  // Messages written before the REQUEST.
    return;
  }
  // Sent: large requests are freed now, small ones keep their buffer for
  // the record's reuse.
  if (call->request.capacity() > 4096) std::string().swap(call->request);
}

void ClientConnection::SendCancel(uint64_t call_id) {
  ids_.erase(call_id);
  if (closed_ || !ready_) return;
  out_.Begin(wire::CANCEL, call_id);
  out_.Send();
}

void ClientConnection::SendStreamFrame(uint64_t call_id, wire::FrameKind kind,
                                       absl::string_view bytes,
                                       uint32_t increment) {
  if (closed_ || !ready_) return;
  wire::FrameMeta& meta = out_.Begin(kind, call_id);
  if (increment != 0) meta.set_window_increment(increment);
  out_.Send(bytes);
}

void ClientConnection::Close(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  if (keepalive_ != nullptr) keepalive_->Stop();
  if (conn_ != nullptr) conn_->Close(why);
  ReleaseSent();
  FailAll(why);
  slot_->OnConnectionClosed(this, why);
}

size_t ClientConnection::OnReadable(transport::Buffer& input) {
  read_time_valid_ = false;
  if (keepalive_ != nullptr) keepalive_->OnRead();
  absl::StatusOr<size_t> wanted = decoder_.Decode(input, *this);
  if (!wanted.ok()) {
    Close(absl::UnavailableError(absl::StrCat(
        "protocol error from ", conn_->peer(), ": ", wanted.status().message())));
    return 1;
  }
  return *wanted;
}

void ClientConnection::OnClosed(const absl::Status& why) {
  closed_ = true;
  if (keepalive_ != nullptr) keepalive_->Stop();
  ReleaseSent();
  absl::Status status = why;
  if (!goaway_message_.empty()) {
    status = absl::UnavailableError(
        absl::StrCat(why.message(), " (after GOAWAY: ", goaway_message_, ")"));
  } else if (why.ok()) {
    status = absl::UnavailableError("connection closed");
  }
  FailAll(status);
  slot_->OnConnectionClosed(this, status);
}

void ClientConnection::FailAll(const absl::Status& why) {
  absl::flat_hash_set<uint64_t> ids = std::move(ids_);
  ids_.clear();
  for (uint64_t id : ids) slot_->OnConnectionLost(this, id, why);
}

void ClientConnection::OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
                               size_t payload_size) {
  switch (meta.kind()) {
    case wire::RESPONSE:
      if (ids_.erase(meta.call_id()) == 1) {
        slot_->OnResponse(this, meta, input, payload_size);
      }
      // A response to a call we gave up on (deadline, cancel) is dropped.
      return;
    case wire::GOAWAY:
      HandleGoAway(meta);
      return;
    case wire::PING:
      conn_->Write([&](transport::Buffer& out) {
        AppendPong(out, input, payload_size);
      });
      return;
    case wire::PONG:
      return;  // Answers our keepalive PING; reading it was the point.
    case wire::MESSAGE:
    case wire::HEADERS:
    case wire::WINDOW_UPDATE:
      // Frames of a call we gave up on are dropped.
      if (ids_.contains(meta.call_id())) {
        slot_->OnStreamFrame(this, meta, input, payload_size);
      }
      return;
    default:
      Close(absl::UnavailableError(absl::StrCat(
          "protocol error from ", conn_->peer(), ": unexpected ",
          FrameKindName(meta.kind()), " frame")));
  }
}

void ClientConnection::OnOversizedFrame(const wire::FrameMeta& meta,
                                        uint64_t payload_size) {
  if (meta.kind() == wire::RESPONSE && ids_.erase(meta.call_id()) == 1) {
    slot_->Finish(meta.call_id(),
                  absl::ResourceExhaustedError(absl::StrCat(
                      "response payload of ", payload_size,
                      " bytes exceeds max_message_bytes ",
                      options_->limits.max_message_bytes)));
  } else if (meta.kind() == wire::MESSAGE && ids_.contains(meta.call_id())) {
    // One oversized stream message fails its call (CANCEL to the server);
    // the payload is discarded as it arrives and the connection goes on.
    slot_->Fail(meta.call_id(),
                absl::ResourceExhaustedError(absl::StrCat(
                    "stream message of ", payload_size,
                    " bytes exceeds max_message_bytes ",
                    options_->limits.max_message_bytes)));
  }
}

void ClientConnection::HandleGoAway(const wire::FrameMeta& meta) {
  draining_ = true;
  absl::Status goaway = StatusFromWire(meta.status_code(), meta.status_message());
  goaway_message_ = goaway.ok() ? "server is shutting down"
                                : std::string(goaway.message());
  // Calls the server will not process are safe to retry elsewhere.
  std::vector<uint64_t> refused;
  for (uint64_t id : ids_) {
    if (id > meta.last_call_id()) refused.push_back(id);
  }
  for (uint64_t id : refused) ids_.erase(id);
  if (!refused.empty()) {
    slot_->OnRefusedByGoAway(
        this, std::move(refused),
        absl::UnavailableError(absl::StrCat(
            "server sent GOAWAY before processing the call: ", goaway_message_)));
  }
  slot_->OnDraining(this);
}

// ---------------------------------------------------------------------------
// ClientSlot

namespace {
uint64_t NextSlotSerial() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

ClientSlot::ClientSlot(transport::EventLoop* loop,
                       transport::SocketAddress address,
                       const ChannelOptions* options, ByteBudget* unsent_budget,
                       std::shared_ptr<balancing::EndpointHealth> health,
                       std::weak_ptr<EndpointSet> set, bool track_load,
                       bool hold_calls,
                       std::shared_ptr<balancing::OutlierDetector> outlier,
                       std::shared_ptr<EndpointMetrics> metrics)
    : loop_(loop),
      serial_(NextSlotSerial()),
      retry_rng_(serial_ * 0x9e3779b97f4a7c15ULL ^
                 static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()))),
      address_(std::move(address)),
      options_(options),
      unsent_budget_(unsent_budget),
      health_(std::move(health)),
      set_(std::move(set)),
      track_load_(track_load),
      hold_calls_(hold_calls),
      backoff_(options->connect_backoff.initial, options->connect_backoff.max,
               options->connect_backoff.multiplier,
               options->connect_backoff.jitter),
      outlier_(std::move(outlier)),
      metrics_(std::move(metrics)) {}

ClientSlot::~ClientSlot() = default;

void ClientSlot::Start(std::unique_ptr<ClientCall> call) {
  uint64_t id = call->id;
  if (shut_down_) {
    // Perhaps after the channel is gone: touch nothing of it.
    call->Done(absl::CancelledError("channel is being destroyed"));
    return;
  }
  Purge();
  if (call->deadline != absl::InfiniteFuture()) {
    if (absl::Now() >= call->deadline) {
      call->Done(absl::DeadlineExceededError(
          absl::StrCat("deadline of ", absl::FormatDuration(call->timeout),
                       " exceeded before ", call->method, " was sent")));
      return;
    }
    ArmDeadline(call.get(), call->deadline - absl::Now());
  }
  ClientCall* raw = call.get();
  CountStarted(raw);
  calls_.emplace(id, std::move(call));
  if (active_ != nullptr && active_->ready()) {
    SendOrQueue(raw);
    return;
  }
  waiting_.push_back(id);
  OpenConnection();
}

void ClientSlot::CountStarted(ClientCall* call) {
  // A retired slot that still gets a call (picked from a snapshot a moment
  // old) stays alive until its calls have finished.
  if (retiring_ && self_ == nullptr) self_ = shared_from_this();
  calls_started_.store(calls_started_.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  if (track_load_) {
    health_->CallStarted();
    call->started = absl::Now();
  }
  if (metrics_ != nullptr) metrics_->in_flight->Increment();
}

void ClientSlot::CountEnded(absl::StatusCode code) {
  if (metrics_ == nullptr) {
    if (outlier_ != nullptr) outlier_->OnCallEnded(outlier_window_, code);
    return;
  }
  // The client's own cancellations say nothing about the endpoint.
  if (code != absl::StatusCode::kOk && code != absl::StatusCode::kCancelled) {
    metrics_->errors->Increment();
  }
  if (outlier_ != nullptr) {
    const int before = outlier_->ejections();
    outlier_->OnCallEnded(outlier_window_, code);
    const int after = outlier_->ejections();
    if (after > before) metrics_->ejections->Add(after - before);
  }
}

void ClientSlot::UpdateHealth() {
  Health now = Health::kIdle;
  if (shut_down_ || retiring_) {
    now = Health::kIdle;  // Counts for nothing.
  } else if (active_ != nullptr && active_->ready()) {
    now = Health::kReady;
  } else if (active_ != nullptr && !active_->closed()) {
    now = Health::kConnecting;
  } else if (failing_) {
    now = Health::kFailing;
  }
  if (now == reported_) return;
  auto add = [this](Health h, int d) {
    switch (h) {
      case Health::kIdle:
        break;
      case Health::kConnecting:
        health_->AddConnecting(d);
        break;
      case Health::kReady:
        health_->AddReady(d);
        break;
      case Health::kFailing:
        health_->AddFailing(d);
        break;
    }
  };
  add(reported_, -1);
  add(now, +1);
  reported_ = now;
}

void ClientSlot::OnConnectFailed() {
  failing_ = true;
  if (std::shared_ptr<EndpointSet> set = set_.lock()) set->OnConnectFailure();
  if (shut_down_ || retiring_) return;
  const absl::Duration delay = backoff_.Next();
  if (reconnect_timer_ == nullptr) {
    reconnect_timer_ = std::make_unique<transport::Timer>(loop_);
  }
  reconnect_timer_->Start(delay, [this] {
    if (shut_down_ || retiring_ || active_ != nullptr) return;
    OpenConnection();
  });
}

void ClientSlot::OnConnectionClosed(ClientConnection* conn,
                                    const absl::Status& why) {
  if (!why.ok()) {
    if (std::shared_ptr<EndpointSet> set = set_.lock()) set->OnConnectFailure();
  }
  if (conn != active_.get()) return;
  // Destroyed later (Purge), not inside its own callback.
  retired_.push_back(std::move(active_));
  UpdateHealth();
}

void ClientSlot::Retire() {
  if (shut_down_ || retiring_) return;
  retiring_ = true;
  if (reconnect_timer_ != nullptr) reconnect_timer_->Cancel();
  UpdateHealth();
  if (hold_calls_ && (active_ == nullptr || !active_->ready()) &&
      !waiting_.empty()) {
    // Held for this endpoint, which is gone: placed again (on an endpoint
    // with the same identity, or waiting for one).
    std::vector<uint64_t> waiting = std::move(waiting_);
    waiting_.clear();
    HandBack(std::move(waiting),
             absl::UnavailableError(absl::StrCat(
                 "endpoint ", address_.ToString(), " was removed")));
  }
  if (calls_.empty()) {
    MaybeFinishRetiring();
  } else {
    self_ = shared_from_this();
  }
}

void ClientSlot::MaybeFinishRetiring() {
  if (!retiring_ || shut_down_ || !calls_.empty()) return;
  active_.reset();
  retired_.clear();
  waiting_.clear();
  blocked_.clear();
  std::shared_ptr<ClientSlot> keep = std::move(self_);  // Freed on return.
}

void ClientSlot::OpenConnection() {
  if (active_ != nullptr) return;  // Connecting.
  auto conn = std::make_unique<ClientConnection>(this, options_);
  absl::Status s = tls_error_;
  if (s.ok()) {
    std::string host = tls_host_;
    if (tls_ != nullptr && host.empty()) {
      // Only the address is known: verify the IP.
      host = address_.ToString();
      host = host.substr(0, host.rfind(':'));
    }
    s = conn->Connect(loop_, address_, tls_.get(), host);
  }
  if (!s.ok()) {
    OnConnectFailed();
    UpdateHealth();
    std::vector<uint64_t> waiting = std::move(waiting_);
    waiting_.clear();
    for (uint64_t w : waiting) Finish(w, s);
    return;
  }
  active_ = std::move(conn);
  UpdateHealth();
}

void ClientSlot::PostStart(std::unique_ptr<ClientCall> call,
                           absl::Status invalid) {
  loop_->Post([self = shared_from_this(), call = std::move(call),
               invalid = std::move(invalid)]() mutable {
    if (!invalid.ok()) {
      call->Done(std::move(invalid));
      return;
    }
    self->Start(std::move(call));
  });
}

bool ClientSlot::Admit(ClientCall* call) {
  // The whole frame is what waits in the output; the header and meta are
  // counted roughly.
  const size_t bytes = call->request.size() + call->method.size() + 64;
  bool admitted;
  if (wake_registered_) {
    admitted = unsent_budget_->TryAcquire(bytes);
  } else {
    admitted = unsent_budget_->AcquireOrNotify(
        bytes, [weak = weak_from_this()] {
          // On whichever thread gave bytes back: hand over to our loop.
          if (std::shared_ptr<ClientSlot> self = weak.lock()) {
            self->loop_->Post([self] { self->AdmitBlocked(); });
          }
        });
    wake_registered_ = !admitted;
  }
  if (admitted) call->charged = bytes;
  return admitted;
}

void ClientSlot::SendOrQueue(ClientCall* call) {
  if (blocked_.empty() && Admit(call)) {
    active_->Send(call);
    return;
  }
  if (!options_->wait_for_request_budget) {
    Finish(call->id,
           absl::ResourceExhaustedError(absl::StrCat(
               "channel to ", address_.ToString(), " has ",
               unsent_budget_->used(),
               " bytes of requests not yet sent, the most "
               "max_unsent_request_bytes (",
               options_->max_unsent_request_bytes, ") allows; ", call->method,
               " (", call->request.size(), " bytes) was not sent")));
    return;
  }
  blocked_.push_back(call->id);
}

void ClientSlot::AdmitBlocked() {
  wake_registered_ = false;
  if (shut_down_) return;
  while (!blocked_.empty()) {
    auto it = calls_.find(blocked_.front());
    if (it == calls_.end()) {  // Ended while it waited.
      blocked_.pop_front();
      continue;
    }
    if (active_ == nullptr || !active_->ready()) {
      // The connection went away meanwhile: these go first on the next.
      waiting_.insert(waiting_.begin(), blocked_.begin(), blocked_.end());
      blocked_.clear();
      OpenConnection();
      return;
    }
    if (!Admit(it->second.get())) return;  // Woken again later.
    blocked_.pop_front();
    active_->Send(it->second.get());
  }
}

void ClientSlot::ArmDeadline(ClientCall* call, absl::Duration left) {
  if (call->timer == nullptr) {
    call->timer = std::make_unique<transport::Timer>(loop_);
  }
  uint64_t id = call->id;
  call->timer->Start(left, [this, id] { Expire(id); });
}

bool ClientSlot::TryStartInline(std::unique_ptr<ClientCall>& call) {
  // Only the plain case: anything that could end the call at once (or
  // touch connections being retired) goes through the posted Start().
  if (shut_down_ || active_ == nullptr || !active_->ready()) return false;
  // Calls waiting for the budget go first; one that does not fit now goes
  // through Start() to wait or fail there.
  if (!blocked_.empty() || !Admit(call.get())) return false;
  if (call->deadline != absl::InfiniteFuture()) {
    absl::Duration left = call->deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      unsent_budget_->Release(call->charged);
      call->charged = 0;
      return false;
    }
    ArmDeadline(call.get(), left);
  }
  ClientCall* raw = call.get();
  CountStarted(raw);
  calls_.emplace(raw->id, std::move(call));
  active_->Send(raw);
  return true;
}

void ClientSlot::OnConnected(ClientConnection* conn, const absl::Status& status) {
  if (conn != active_.get()) return;
  if (!status.ok()) {
    retired_.push_back(std::move(active_));
    OnConnectFailed();
    UpdateHealth();
    if (hold_calls_ && !shut_down_ && !retiring_) {
      return;  // They wait for the reconnect OnConnectFailed() scheduled.
    }
    absl::Status why = absl::UnavailableError(absl::StrCat(
        "cannot connect to ", address_.ToString(), ": ", status.message()));
    std::vector<uint64_t> waiting = std::move(waiting_);
    waiting_.clear();
    HandBack(std::move(waiting), why);
    return;
  }
  failing_ = false;
  backoff_.Reset();
  if (reconnect_timer_ != nullptr) reconnect_timer_->Cancel();
  UpdateHealth();
  SendWaiting();
}

void ClientSlot::HandBack(std::vector<uint64_t> ids, const absl::Status& why,
                          const balancing::EndpointHealth* avoid) {
  std::shared_ptr<EndpointSet> set = set_.lock();
  for (uint64_t id : ids) {
    auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    // Never written: unary calls move to another endpoint if there is a
    // usable one (transparent retry; streams have handles bound here).
    // Each call gets its own Status (not a copy sharing one payload across
    // the threads their callbacks hand it to).
    absl::Status own(why.code(), why.message());
    if (set == nullptr || shut_down_ || it->second->stream != nullptr) {
      Finish(id, std::move(own));
      continue;
    }
    set->Reroute(Detach(id), std::move(own), avoid);
  }
}

std::unique_ptr<ClientCall> ClientSlot::Detach(uint64_t call_id) {
  auto it = calls_.find(call_id);
  std::unique_ptr<ClientCall> call = std::move(it->second);
  calls_.erase(it);
  if (call->timer != nullptr) call->timer.reset();  // This loop's.
  if (call->charged != 0) {
    unsent_budget_->Release(call->charged);
    call->charged = 0;
  }
  if (track_load_ && call->started != absl::InfinitePast()) {
    health_->CallAbandoned();
    call->started = absl::InfinitePast();
  }
  if (metrics_ != nullptr) metrics_->in_flight->Decrement();
  if (call->conn != nullptr) {
    call->conn->Forget(call_id);
    call->conn = nullptr;
  }
  // Its CallHandle may name this slot: Cancel() must find where it goes.
  if (std::shared_ptr<EndpointSet> set = set_.lock()) {
    set->Follow(call.get(), serial_, call_id);
  }
  if (retiring_ && calls_.empty() && self_ != nullptr) {
    loop_->Post([self = shared_from_this()] { self->MaybeFinishRetiring(); });
  }
  return call;
}

bool ClientSlot::MaybeRetry(uint64_t call_id, const absl::Status& status,
                            const std::string* pushback_ms) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return false;
  ClientCall* call = it->second.get();
  const RetryRule* rule = call->retry;
  if (rule == nullptr || call->stream != nullptr || call->committed ||
      shut_down_ || (rule->codes & CodeBit(status.code())) == 0) {
    return false;
  }
  // Every failed attempt counts against the throttle, the last one too.
  const bool allowed = call->throttle == nullptr || call->throttle->OnFailure();
  if (!allowed || call->attempts >= rule->max_attempts) return false;
  absl::Duration delay;
  if (pushback_ms != nullptr) {
    int64_t ms;
    if (!absl::SimpleAtoi(*pushback_ms, &ms) || ms < 0) return false;
    delay = absl::Milliseconds(ms);
  } else {
    delay = rule->Backoff(call->attempts + 1, &retry_rng_);
  }
  if (call->deadline != absl::InfiniteFuture() &&
      absl::Now() + delay >= call->deadline) {
    return false;
  }
  std::shared_ptr<EndpointSet> set = set_.lock();
  if (set == nullptr) return false;
  // The failed attempt counts for outlier ejection (and the endpoint's
  // errors) like any ended call; Detach() takes it out of in flight.
  CountEnded(status.code());
  std::unique_ptr<ClientCall> moving = Detach(call_id);
  ++moving->attempts;
  if (moving->metrics != nullptr) moving->metrics->Retried();
  // Servers may tell retries apart (gRPC's grpc-previous-rpc-attempts).
  moving->headers[std::string(wire::kPreviousAttemptsKey)] =
      absl::StrCat(moving->attempts - 1);
  set->Retry(std::move(moving), absl::Status(status.code(), status.message()),
             delay, health_.get());
  return true;
}

bool ClientSlot::MoveRefused(uint64_t call_id, const absl::Status& why) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second->stream != nullptr) return false;
  std::shared_ptr<EndpointSet> set = set_.lock();
  if (set == nullptr || shut_down_ || !set->AnyUsableBut(health_.get())) {
    return false;
  }
  HandBack({call_id}, why, health_.get());
  return true;
}

void ClientSlot::OnRefusedByGoAway(ClientConnection* conn,
                                   std::vector<uint64_t> ids,
                                   const absl::Status& why) {
  for (uint64_t id : ids) {
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second->conn != conn) continue;
    if (MoveRefused(id, why)) continue;
    ClientCall* call = it->second.get();
    // No other endpoint: the server never saw the call, so it goes again on
    // this endpoint's next connection (OnDraining opens it) — a prefork
    // port whose other workers serve, or a single replica restarting. As
    // bounded as moves to other endpoints.
    if (call->stream == nullptr && !shut_down_ && !retiring_ &&
        call->reroutes < kMaxGoAwayResends) {
      ++call->reroutes;
      call->conn = nullptr;
      waiting_.push_back(id);
      continue;
    }
    Finish(id, absl::Status(why.code(), why.message()));
  }
}

void ClientSlot::SendWaiting() {
  std::vector<uint64_t> waiting = std::move(waiting_);
  waiting_.clear();
  for (uint64_t id : waiting) {
    auto it = calls_.find(id);
    if (it == calls_.end()) continue;  // Cancelled or expired meanwhile.
    if (active_ == nullptr || !active_->ready()) {
      waiting_.push_back(id);  // Lost again while sending (a failure).
      continue;
    }
    SendOrQueue(it->second.get());
  }
}

void ClientSlot::OnResponse(ClientConnection* conn, const wire::FrameMeta& meta,
                            transport::Buffer& input, size_t payload_size) {
  auto it = calls_.find(meta.call_id());
  if (it == calls_.end() || it->second->conn != conn) return;
  ClientCall* call = it->second.get();
  absl::Status status = StatusFromWire(meta.status_code(), meta.status_message());
  if (status.ok() && call->metrics != nullptr) {
    call->metrics->AddReceivedBytes(payload_size);
  }
  if (!meta.metadata().empty()) {
    absl::Status bad = CheckMetadata(
        meta.metadata(), options_->limits.max_metadata_bytes,
        "response trailers from the server", absl::StatusCode::kInternal);
    if (!bad.ok()) {
      // Neither the response nor the trailers are delivered.
      Finish(meta.call_id(), std::move(bad), conn);
      return;
    }
  }
  if (call->stream != nullptr) {
    ClientStreamState* st = call->stream.get();
    std::unique_ptr<google::protobuf::Message> response;
    // A client-streaming call's one response comes with its RESPONSE.
    if (status.ok() && st->kind == MethodKind::kClientStreaming) {
      response.reset(st->response_prototype->New());
      if (!ParsePayload(input, payload_size, response.get())) {
        status = absl::InternalError(absl::StrCat(
            "response payload (", payload_size, " bytes) does not parse as ",
            response->GetTypeName()));
        response.reset();
      }
    }
    {
      MutexLock lock(&st->mu);
      st->trailers.insert(meta.metadata().begin(), meta.metadata().end());
      if (response != nullptr) {
        st->in.push_back({std::move(response), payload_size});
      }
    }
    Finish(meta.call_id(), std::move(status), conn);
    return;
  }
  if (status.code() == absl::StatusCode::kResourceExhausted &&
      call->reroutes < 4) {
    // Refused before dispatch with "retry elsewhere now": transparent.
    auto pushback = meta.metadata().find(wire::kRetryPushbackMsKey);
    if (pushback != meta.metadata().end() && pushback->second == "0" &&
        MoveRefused(meta.call_id(), status)) {
      return;
    }
  }
  if (!status.ok() && call->retry != nullptr) {
    auto pushback = meta.metadata().find(wire::kRetryPushbackMsKey);
    if (MaybeRetry(meta.call_id(), status,
                   pushback == meta.metadata().end() ? nullptr
                                                     : &pushback->second)) {
      return;
    }
  }
  if (status.ok()) {
    if (!ParsePayload(input, payload_size, call->response)) {
      status = absl::InternalError(absl::StrCat(
          "response payload (", payload_size, " bytes) does not parse as ",
          call->response->GetTypeName()));
    }
  }
  if (call->trailers != nullptr && !meta.metadata().empty()) {
    call->trailers->insert(meta.metadata().begin(), meta.metadata().end());
  }
  Finish(meta.call_id(), std::move(status), conn);
}

void ClientSlot::OnConnectionLost(ClientConnection* conn, uint64_t call_id,
                                  const absl::Status& why) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second->conn != conn) return;
  absl::Status status =
      why.ok() ? absl::UnavailableError("connection closed") : why;
  if (it->second->retry == nullptr ||
      !MaybeRetry(call_id, status, /*pushback_ms=*/nullptr)) {
    Finish(call_id, std::move(status));
  }
  if (conn == active_.get() && conn->closed()) {
    retired_.push_back(std::move(active_));
    UpdateHealth();
  }
}

void ClientSlot::OnDraining(ClientConnection* conn) {
  if (conn == active_.get()) retired_.push_back(std::move(active_));
  // The draining connection closes once its remaining calls finish; the
  // server closes it too.
  UpdateHealth();
  // Calls it refused unprocessed, kept here: a new connection takes them.
  if (!waiting_.empty() && !shut_down_ && !retiring_) OpenConnection();
}

void ClientSlot::Finish(uint64_t call_id, absl::Status status,
                        ClientConnection* read_by) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  std::unique_ptr<ClientCall> call = std::move(it->second);
  calls_.erase(it);
  if (call->charged != 0) {  // Admitted but never written.
    unsent_budget_->Release(call->charged);
    call->charged = 0;
  }
  if (track_load_ && call->started != absl::InfinitePast()) {
    health_->CallEnded(absl::ToInt64Microseconds(absl::Now() - call->started));
  }
  if (call->throttle != nullptr && status.ok()) call->throttle->OnSuccess();
  // Outlier ejection: how the server or connection ended the call
  // (CANCELLED, as a client's cancellation ends it, counts for nothing).
  if (metrics_ != nullptr) metrics_->in_flight->Decrement();
  CountEnded(status.code());
  if (call->metrics != nullptr) {
    call->RecordEndAt(status.code(), read_by != nullptr
                                         ? read_by->ReadTime()
                                         : LatencyClock::Now());
  }
  absl::AnyInvocable<void(absl::Status)> done = std::move(call->done);
  // Recycled before `done` runs, so a call it starts can reuse the record.
  Recycle(std::move(call));
  done(std::move(status));
  if (retiring_ && calls_.empty() && self_ != nullptr) {
    // Not from inside a connection's callback: from the loop.
    loop_->Post([self = shared_from_this()] { self->MaybeFinishRetiring(); });
  }
}

std::unique_ptr<ClientCall> ClientSlot::NewCall() {
  if (idle_calls_.empty()) return std::make_unique<ClientCall>();
  std::unique_ptr<ClientCall> call = std::move(idle_calls_.back());
  idle_calls_.pop_back();
  return call;
}

void ClientSlot::Recycle(std::unique_ptr<ClientCall> call) {
  // Bounded, and small requests only: an idle record keeps its buffers.
  constexpr size_t kMaxIdleCalls = 128;
  constexpr size_t kMaxKeptRequestBytes = 4096;
  if (idle_calls_.size() >= kMaxIdleCalls || shut_down_ ||
      call->stream != nullptr) {
    return;
  }
  if (call->timer != nullptr) call->timer->Cancel();
  call->id = 0;
  call->response = nullptr;
  call->trailers = nullptr;
  call->response_headers = nullptr;
  call->headers.clear();
  call->deadline = absl::InfiniteFuture();
  call->timeout = absl::InfiniteDuration();
  call->conn = nullptr;
  call->started = absl::InfinitePast();
  call->reroutes = 0;
  call->retry = nullptr;
  call->throttle = nullptr;
  call->attempts = 1;
  call->committed = false;
  call->ticket = 0;
  call->metrics = nullptr;
  if (call->request.capacity() > kMaxKeptRequestBytes) {
    std::string().swap(call->request);
  } else {
    call->request.clear();
  }
  idle_calls_.push_back(std::move(call));
}

void ClientSlot::Expire(uint64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  ClientCall* call = it->second.get();
  if (call->conn != nullptr) call->conn->SendCancel(call_id);
  Finish(call_id, absl::DeadlineExceededError(absl::StrCat(
                      "deadline of ", absl::FormatDuration(call->timeout),
                      " exceeded calling ", call->method)));
}

void ClientSlot::Fail(uint64_t call_id, absl::Status status) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  FailStream(it->second.get(), std::move(status));
}

void ClientSlot::Cancel(uint64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    // Moved to another endpoint (a retry, a failed connect), or over.
    if (std::shared_ptr<EndpointSet> set = set_.lock()) {
      set->CancelFollowed(serial_, call_id,
                          absl::CancelledError("call cancelled by the client"));
    }
    return;
  }
  ClientCall* call = it->second.get();
  if (call->conn != nullptr) call->conn->SendCancel(call_id);
  Finish(call_id, absl::CancelledError(
                      absl::StrCat(call->method, " cancelled by the client")));
}

void ClientSlot::Purge() {
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                [](const std::unique_ptr<ClientConnection>& c) {
                                  return c->closed() ||
                                         (c->draining() && c->idle());
                                }),
                 retired_.end());
  if (active_ != nullptr && active_->closed()) {
    active_.reset();
    UpdateHealth();
  }
}

void ClientSlot::Shutdown() {
  shut_down_ = true;
  std::vector<uint64_t> ids;
  for (auto& [id, call] : calls_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    if (it->second->conn != nullptr) it->second->conn->Forget(id);
    Finish(id, absl::CancelledError("channel destroyed with the call open"));
  }
  waiting_.clear();
  blocked_.clear();
  active_.reset();
  retired_.clear();
  idle_calls_.clear();  // Their timers belong to this loop: free them here.
  reconnect_timer_.reset();
  UpdateHealth();
  std::shared_ptr<ClientSlot> keep = std::move(self_);  // Freed on return.
}

}  // namespace bevrpc::internal
