// ClientSlot: one of a Channel's connection slots. It owns the calls started
// on it, (re)connects on demand, sends requests, matches responses by
// call_id, and enforces deadlines. After a GOAWAY it keeps the old
// connection for the calls the server will still finish and opens a new
// one for new calls. With ChannelOptions::keepalive_time set, a connection
// that answers nothing to a PING is closed and its calls fail. Internal to
// rpc/.
//
// Threading: NextCallId() is thread-safe; everything else runs on the
// slot's loop thread.
#ifndef BEVRPC_RPC_INTERNAL_CLIENT_SLOT_H_
#define BEVRPC_RPC_INTERNAL_CLIENT_SLOT_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/balancing/endpoint_health.h"
#include "rpc/balancing/outlier_detector.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/frame_codec.h"
#include "rpc/internal/byte_budget.h"
#include "rpc/internal/call_metrics.h"
#include "rpc/internal/client_metrics.h"
#include "rpc/internal/call_policy.h"
#include "rpc/internal/frame_writer.h"
#include "rpc/internal/keepalive.h"
#include "rpc/internal/latency_clock.h"
#include "rpc/naming/internal/backoff.h"
#include "transport/address.h"
#include "transport/connection.h"
#include "transport/tls.h"
#include "transport/event_loop.h"

namespace bevrpc::internal {

class ClientStreamState;
class EndpointSet;

struct ClientCall {
  uint64_t id = 0;
  std::string method;
  std::string request;  // Serialized.
  google::protobuf::Message* response = nullptr;
  Metadata* trailers = nullptr;
  // Unary calls: where the server's initial response headers go (null:
  // dropped).
  Metadata* response_headers = nullptr;
  Metadata headers;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration timeout = absl::InfiniteDuration();
  absl::AnyInvocable<void(absl::Status)> done;
  std::unique_ptr<transport::Timer> timer;
  class ClientConnection* conn = nullptr;  // Null while waiting to be sent.
  // Bytes taken from the channel's unsent-request budget for the REQUEST,
  // once admitted (they then belong to the connection, which gives them
  // back as the bytes leave).
  size_t charged = 0;
  // Streaming calls only: what the ClientStream handle shares with the loop.
  std::shared_ptr<ClientStreamState> stream;
  // When the call was handed to a slot (least_loaded's latency), if the
  // channel tracks load.
  absl::Time started = absl::InfinitePast();
  // Times the call was moved to another endpoint because its connection
  // failed before it was written (bounded: see EndpointSet::Reroute()).
  int reroutes = 0;
  // ring_hash: the hash of CallOptions::hash_key (0 otherwise).
  uint64_t hash = 0;
  // Retries (rpc/internal/call_policy.h): the method's rule (null: none)
  // and the channel's throttle (null with it); attempts made so far; set
  // once the server's response headers arrived (the call is then
  // committed: never retried).
  const RetryRule* retry = nullptr;
  RetryThrottle* throttle = nullptr;
  int attempts = 1;
  bool committed = false;
  // Non-zero once the call has left the slot its CallHandle names (moved
  // by a retry or after a failed connect), or was parked: the key under
  // which EndpointSet follows it for Cancel().
  uint64_t ticket = 0;
  // Its method's metrics (null: not recorded, e.g. metrics off or a hedged
  // call's attempt), counted as started at `metrics_start`
  // (LatencyClock::Now()); RecordEnd() counts its end once.
  CallMetrics* metrics = nullptr;
  int64_t metrics_start = 0;

  // The call ended now.
  void RecordEnd(absl::StatusCode code) {
    if (metrics == nullptr) return;
    RecordEndAt(code, LatencyClock::Now());
  }
  // The call ended at `ended` (LatencyClock::Now()).
  void RecordEndAt(absl::StatusCode code, int64_t ended) {
    if (metrics == nullptr) return;
    metrics->EndedNanos(code, LatencyClock::ToNanos(ended - metrics_start));
    metrics = nullptr;
  }
  // Ends the call: records it and runs `done`.
  void Done(absl::Status status) {
    RecordEnd(status.code());
    done(std::move(status));
  }
};

class ClientSlot;

// One connection of a slot.
class ClientConnection : public transport::ConnectionHandler,
                         public FrameSink {
 public:
  ClientConnection(ClientSlot* slot, const ChannelOptions* options);
  // With `tls` (not null): over TLS, verifying `tls_host` (see
  // transport::TlsContext::NewSsl()).
  absl::Status Connect(transport::EventLoop* loop,
                       const transport::SocketAddress& address,
                       const transport::TlsContext* tls = nullptr,
                       const std::string& tls_host = "");

  bool ready() const { return ready_ && !draining_ && !closed_; }
  bool closed() const { return closed_; }
  bool draining() const { return draining_; }
  bool idle() const { return ids_.empty(); }

  // Writes the REQUEST (and a stream's queued messages). `call->charged`
  // bytes of the unsent-request budget go with it: given back once its
  // bytes have left for the socket.
  void Send(ClientCall* call);
  bool writable() const { return conn_ != nullptr && conn_->writable(); }
  void SendCancel(uint64_t call_id);
  // Streaming frames of an open call: MESSAGE (`bytes`), HALF_CLOSE,
  // WINDOW_UPDATE (`increment`).
  void SendStreamFrame(uint64_t call_id, wire::FrameKind kind,
                       absl::string_view bytes, uint32_t increment);
  void Forget(uint64_t call_id) { ids_.erase(call_id); }
  void Close(const absl::Status& why);

  ~ClientConnection() override;

  size_t OnReadable(transport::Buffer& input) override;
  // When the bytes being handled now were read (LatencyClock::Now()): read
  // once per OnReadable(), at its first use, so that the calls whose
  // RESPONSEs one read brought share one clock read and all end when they
  // arrived (not later, for waiting behind each other's callbacks). Loop
  // thread, inside OnReadable() only.
  int64_t ReadTime() {
    if (!read_time_valid_) {
      read_time_ = LatencyClock::Now();
      read_time_valid_ = true;
    }
    return read_time_;
  }
  void OnWritabilityChanged(bool writable) override;
  void OnOutputDrained() override { ReleaseSent(); }
  void OnClosed(const absl::Status& why) override;
  void OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
               size_t payload_size) override;
  void OnOversizedFrame(const wire::FrameMeta& meta,
                        uint64_t payload_size) override;

 private:
  void OnConnected(absl::Status status);
  void OnKeepaliveTimeout();
  void HandleGoAway(const wire::FrameMeta& meta);
  void FailAll(const absl::Status& why);
  // Gives back the budget of requests whose bytes have left (all of them
  // once closed).
  void ReleaseSent();

  ClientSlot* slot_;
  const ChannelOptions* options_;
  std::unique_ptr<transport::Connection> conn_;
  // Once connected, when keepalive_time is finite. After conn_: uses it.
  std::unique_ptr<Keepalive> keepalive_;
  FrameDecoder decoder_;
  // ReadTime()'s value, once read during the current OnReadable().
  int64_t read_time_ = 0;
  bool read_time_valid_ = false;
  absl::flat_hash_set<uint64_t> ids_;  // Calls sent here and still open.
  bool ready_ = false;
  bool draining_ = false;
  bool closed_ = false;
  std::string goaway_message_;
  FrameWriter out_;  // Every frame written, through conn_ once connected.
  // Streaming calls sent here (some may have ended: checked against ids_).
  absl::flat_hash_set<uint64_t> stream_ids_;
  // Requests still (partly) in the output: the connection's bytes_written()
  // after each, and the budget it holds.
  struct Unsent {
    uint64_t end;
    size_t bytes;
  };
  // A queue kept in a vector from unsent_head_ on: it reuses its storage
  // (a std::deque would allocate a block every few dozen calls).
  std::vector<Unsent> unsent_;
  size_t unsent_head_ = 0;
};

// Owned by its Endpoint (rpc/internal/endpoint_set.h) through a shared_ptr
// that closures posted to the loop share, so that one running after the
// channel is gone finds the slot shut down (and touches nothing of the
// channel's) instead of freed memory.
//
// Health: the slot reports its connection's state to the endpoint's
// EndpointHealth (connecting, ready, failing). After a failed connect it
// is in TRANSIENT_FAILURE and reconnects in the background after a
// jittered exponential backoff (ChannelOptions::connect_backoff); a call
// that still lands on it (every endpoint failing) connects at once.
//
// Outlier ejection: each call that ends here is counted by the endpoint's
// OutlierDetector (if any), in this slot's own window.
//
// Calls whose connect failed move to another endpoint (EndpointSet::
// Reroute). With `hold_calls` (ring_hash_strict: only this endpoint has
// their data) they stay instead, waiting for a reconnect within their
// deadlines, and go back to the set if the endpoint is removed.
class ClientSlot : public std::enable_shared_from_this<ClientSlot> {
 public:
  // `options` and `unsent_budget` are the channel's: used only until
  // Shutdown(). `set` hears of connect failures (may be empty). `outlier`
  // is the endpoint's detector (null: outlier detection off).
  ClientSlot(transport::EventLoop* loop, transport::SocketAddress address,
             const ChannelOptions* options, ByteBudget* unsent_budget,
             std::shared_ptr<balancing::EndpointHealth> health,
             std::weak_ptr<EndpointSet> set, bool track_load,
             bool hold_calls,
             std::shared_ptr<balancing::OutlierDetector> outlier = nullptr,
             std::shared_ptr<EndpointMetrics> metrics = nullptr);
  ~ClientSlot();

  const balancing::EndpointHealth* health() const { return health_.get(); }
  // ChannelOptions::tls: connections use `tls` (or fail with `error` when
  // its files did not load) and verify `host` (empty: the endpoint's IP).
  // Call before the first call is started.
  void SetTls(std::shared_ptr<const transport::TlsContext> tls,
              absl::Status error, std::string host) {
    tls_ = std::move(tls);
    tls_error_ = std::move(error);
    tls_host_ = std::move(host);
  }
  // Calls handed to this slot so far. Any thread.
  uint64_t calls_started() const {
    return calls_started_.load(std::memory_order_relaxed);
  }
  // The endpoint was removed: no reconnects; connections close once the
  // calls still open have finished. Loop thread.
  void Retire();

  transport::EventLoop* loop() const { return loop_; }
  // Unique among the process's slots (never reused), for CallHandle
  // lookups of calls that moved away from this slot.
  uint64_t serial() const { return serial_; }
  uint64_t NextCallId() {
    return next_call_id_.fetch_add(1, std::memory_order_relaxed);
  }

  void Start(std::unique_ptr<ClientCall> call);
  // Any thread: on the loop, Start()s `call`, or fails it with `invalid`
  // when that is not OK (so its callback runs on the loop either way).
  void PostStart(std::unique_ptr<ClientCall> call, absl::Status invalid);
  // A call record, recycled when possible. Loop thread only.
  std::unique_ptr<ClientCall> NewCall();
  // On the loop thread, from CallAsync(): sends `call` at once if a
  // connection is ready and nothing could fail it synchronously (so no
  // callback runs inline). Returns false, leaving `call`, otherwise.
  bool TryStartInline(std::unique_ptr<ClientCall>& call);
  void Cancel(uint64_t call_id);
  // Ends a call with `status` and sends CANCEL.
  void Fail(uint64_t call_id, absl::Status status);
  // Fails every call with CANCELLED and closes every connection.
  void Shutdown();

  // For ClientConnection.
  void OnConnected(ClientConnection* conn, const absl::Status& status);
  void OnResponse(ClientConnection* conn, const wire::FrameMeta& meta,
                  transport::Buffer& input, size_t payload_size);
  void OnConnectionLost(ClientConnection* conn, uint64_t call_id,
                        const absl::Status& why);
  void OnDraining(ClientConnection* conn);
  // GOAWAY: the server will not process these calls (ids above its
  // last_call_id): moved to other endpoints where possible, else failed.
  void OnRefusedByGoAway(ClientConnection* conn, std::vector<uint64_t> ids,
                         const absl::Status& why);
  // A connection closed (after its calls were failed); `why` is OK for an
  // orderly close.
  void OnConnectionClosed(ClientConnection* conn, const absl::Status& why);
  // Ends a call: removes it, cancels its timer and runs its callback.
  // `read_by`: the connection whose current read brought the call's
  // RESPONSE (the call then ended when that read did, ReadTime()); null
  // when it ends for another reason (it ends now).
  void Finish(uint64_t call_id, absl::Status status,
              ClientConnection* read_by = nullptr);
  // Streaming (client_stream.cc): MESSAGE / HEADERS / WINDOW_UPDATE frames
  // of an open call; sends what a stream has queued (and its HALF_CLOSE);
  // grants the credit its reads consumed.
  void OnStreamFrame(ClientConnection* conn, const wire::FrameMeta& meta,
                     transport::Buffer& input, size_t payload_size);
  void PumpStream(uint64_t call_id);
  void GrantStream(uint64_t call_id);
  // Fails a stream for a protocol violation by the server: CANCEL, status.
  void FailStream(ClientCall* call, absl::Status status);
  // A connection's writability changed: streams on it stop or resume.
  void OnStreamWritability(uint64_t call_id, bool writable);
  ByteBudget* unsent_budget() const { return unsent_budget_; }

 private:
  void SendWaiting();
  // Sends `call` on the ready active_ connection once the unsent-request
  // budget admits it (in order: behind calls already blocked), else queues
  // it in blocked_ or fails it, as the options say.
  void SendOrQueue(ClientCall* call);
  // Takes the budget for `call`; false when it must wait (a wake-up is
  // then registered with the budget).
  bool Admit(ClientCall* call);
  // From the budget's wake-up: sends blocked calls that now fit.
  void AdmitBlocked();
  // Opens active_ for the calls in waiting_.
  void OpenConnection();
  // Starts (reusing) `call`'s timer: Expire() after `left`.
  void ArmDeadline(ClientCall* call, absl::Duration left);
  // Keeps a finished call's record (and its strings' capacity) for reuse.
  void Recycle(std::unique_ptr<ClientCall> call);
  void Purge();
  void Expire(uint64_t call_id);
  // Reports the slot's state to its EndpointHealth when it changed.
  void UpdateHealth();
  // After a failed connect: TRANSIENT_FAILURE, reconnect after backoff.
  void OnConnectFailed();
  void CountStarted(ClientCall* call);
  // Retired and idle: closes connections, drops the self-reference.
  void MaybeFinishRetiring();

  transport::EventLoop* const loop_;
  const uint64_t serial_;
  uint64_t retry_rng_;  // Backoff jitter (splitmix64 state).
  const transport::SocketAddress address_;
  std::shared_ptr<const transport::TlsContext> tls_;  // SetTls().
  absl::Status tls_error_;
  std::string tls_host_;
  const ChannelOptions* const options_;
  std::atomic<uint64_t> next_call_id_{1};
  absl::flat_hash_map<uint64_t, std::unique_ptr<ClientCall>> calls_;
  std::vector<uint64_t> waiting_;  // Started while no connection was ready.
  // Admitted to nothing yet: waiting for the unsent-request budget, in
  // order (ids of calls that ended meanwhile are skipped).
  std::deque<uint64_t> blocked_;
  bool wake_registered_ = false;
  ByteBudget* const unsent_budget_;
  std::vector<std::unique_ptr<ClientCall>> idle_calls_;
  std::unique_ptr<ClientConnection> active_;
  // Draining after GOAWAY, or closed and waiting to be destroyed outside
  // their own callbacks.
  std::vector<std::unique_ptr<ClientConnection>> retired_;
  bool shut_down_ = false;

  const std::shared_ptr<balancing::EndpointHealth> health_;
  const std::weak_ptr<EndpointSet> set_;
  const bool track_load_;
  const bool hold_calls_;
  // Hands waiting (never written) unary calls back to the set, to be
  // placed again; others fail with `why`.
  void HandBack(std::vector<uint64_t> ids, const absl::Status& why,
                const balancing::EndpointHealth* avoid = nullptr);
  // A unary call that failed with `status` (the server's answer, with the
  // value of its bevrpc-retry-pushback-ms trailer if any, or its
  // connection lost) and that its retry rule lets run again: leaves this
  // slot for EndpointSet::Retry() (true). False: the call is untouched.
  bool MaybeRetry(uint64_t call_id, const absl::Status& status,
                  const std::string* pushback_ms);
  // Takes a call out of this slot, to be moved (HandBack, MaybeRetry).
  std::unique_ptr<ClientCall> Detach(uint64_t call_id);
  // A unary call the server refused before running it (GOAWAY above its
  // last_call_id, or overloaded with a retry-now pushback): placed again on
  // another usable endpoint, without counting as an attempt. False (the
  // call untouched) when there is none.
  bool MoveRefused(uint64_t call_id, const absl::Status& why);
  // How often one call refused by GOAWAY goes again on this endpoint's
  // next connection when no other endpoint is usable.
  static constexpr int kMaxGoAwayResends = 4;
  enum class Health { kIdle, kConnecting, kReady, kFailing };
  Health reported_ = Health::kIdle;
  bool failing_ = false;  // The last connect failed and none succeeded since.
  naming::internal::Backoff backoff_;
  std::unique_ptr<transport::Timer> reconnect_timer_;
  std::atomic<uint64_t> calls_started_{0};
  // Outlier ejection: the endpoint's detector and this slot's counts.
  const std::shared_ptr<balancing::OutlierDetector> outlier_;
  balancing::OutlierDetector::Window outlier_window_;
  // The endpoint's series (null: metrics off).
  const std::shared_ptr<EndpointMetrics> metrics_;
  // A call (or a failed attempt) ended here with `code`: the outlier
  // detector and the endpoint's errors and ejections hear of it.
  void CountEnded(absl::StatusCode code);
  bool retiring_ = false;
  // Keeps a retired slot alive until its calls have finished.
  std::shared_ptr<ClientSlot> self_;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CLIENT_SLOT_H_
