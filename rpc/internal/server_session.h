// ServerSession: the server's side of one connection. It deframes requests
// (FrameDecoder), dispatches them to handlers, writes responses, enforces
// limits, pings quiet connections (keepalive), counts the client's pings
// (ping-flood defence) and early cancels (cancel-storm defence), and
// answers protocol errors with GOAWAY. Internal to rpc/.
//
// HTTP: on a port that also serves the built-in pages (HttpMode::kSamePort)
// a new session sniffs the first bytes: an HTTP method token makes the
// connection HTTP for its whole life, and every callback then goes to an
// owned admin::HttpConnection (the bytes read while sniffing included);
// anything else is deframed as bevrpc, so bad magic is answered exactly as
// before. An HTTP request never reaches the dispatcher.
//
// Threading: everything runs on the connection's loop thread. The Server
// owns sessions and destroys them on that thread, after OnClosed.
#ifndef BEVRPC_RPC_INTERNAL_SERVER_SESSION_H_
#define BEVRPC_RPC_INTERNAL_SERVER_SESSION_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "rpc/admin/http_connection.h"
#include "rpc/admin/page_registry.h"
#include "rpc/frame_codec.h"
#include "rpc/internal/admission.h"
#include "rpc/internal/byte_budget.h"
#include "rpc/internal/connection_table.h"
#include "rpc/internal/frame_writer.h"
#include "rpc/internal/keepalive.h"
#include "rpc/internal/server_call.h"
#include "rpc/internal/server_metrics.h"
#include "rpc/method.h"
#include "rpc/server_options.h"
#include "rpc/trace/rpcz_store.h"
#include "rpc/worker_pool.h"
#include "transport/connection.h"

namespace bevrpc::internal {

// What every session of one server shares. Immutable while serving, except
// through its own thread-safe members.
struct ServerShared {
  ServerOptions options;
  absl::flat_hash_map<std::string, MethodDesc> methods;
  absl::flat_hash_set<std::string> services;
  std::unique_ptr<WorkerPool> workers;
  // Sync streaming handlers: elastic, up to max_stream_threads.
  std::unique_ptr<WorkerPool> stream_workers;
  // max_server_memory_bytes: what every session holds (requests read and
  // not finished, unsent output), as each last reported it.
  std::unique_ptr<ByteBudget> memory;
  // Concurrency limits and fault injection, resolved at Start().
  std::unique_ptr<Admission> admission;
  // Per-method metrics, resolved at Start(); null with enable_metrics off.
  std::unique_ptr<ServerMetrics> metrics;
  // Call pools not yet freed: a pool outlives its connection while a
  // handler still holds one of its calls (an unfinished Completion).
  // Shutdown waits for 0 before it stops the loops those calls post to.
  mutable std::atomic<int64_t> live_call_pools{0};
  // The built-in HTTP pages; filled before Start(), read-only after.
  admin::PageRegistry pages;
  // Sessions that are HTTP (HttpLimits::max_connections).
  mutable std::atomic<int64_t> http_connections{0};
  // Every open session's counters, for /connections.
  mutable ConnectionTable connection_table;
  // Recent calls for /rpcz (options.rpcz); made with the server.
  std::unique_ptr<trace::RpczStore> rpcz;
};

// What a new session's first bytes may be.
enum class SessionProtocol {
  kRpc,    // bevrpc frames only (HTTP gets the bad-magic answer).
  kSniff,  // bevrpc, or HTTP if the first bytes are an HTTP method.
  kHttp,   // HTTP only (the admin address).
};

class ServerSession : public transport::ConnectionHandler, public FrameSink {
 public:
  // `on_closed` runs on the loop once the connection is closed; the owner
  // then destroys the session (later, not inside that call).
  ServerSession(const ServerShared* shared,
                std::unique_ptr<transport::Connection> conn,
                absl::AnyInvocable<void(ServerSession*)> on_closed,
                SessionProtocol protocol = SessionProtocol::kRpc);
  ~ServerSession() override;

  void Start();
  // For a TLS server's plaintext client (call before Start()): answer the
  // first bytes with a refusal ("server requires TLS": GOAWAY for bevrpc,
  // 400 for HTTP) and close.
  void RefusePlaintext() { refuse_plaintext_ = true; }

  // Graceful drain: GOAWAY with the last call id, refuse new calls with
  // UNAVAILABLE, close once open calls finish. An HTTP session goes on
  // serving (/health answers 503 meanwhile) until FinishHttp().
  void BeginDrain();
  // Ends every open call with UNAVAILABLE and closes after flushing. Not
  // for HTTP sessions (no calls).
  void AbortCalls();
  // An HTTP session closes once its request under way is answered (at
  // once when there is none). Nothing for others.
  void FinishHttp();
  bool is_http() const { return http_ != nullptr; }
  // Closes the connection at once.
  void CloseNow();

  // For ServerCall. `handler_result` when the status is the handler's own
  // (not a deadline, cancellation or shutdown). Trailers over
  // max_metadata_bytes are not sent: the call ends with RESOURCE_EXHAUSTED
  // instead. Returns the status code sent.
  absl::StatusCode SendResponse(ServerCall* call, const absl::Status& status,
                                bool handler_result);
  void RemoveCall(uint64_t call_id);
  // Streaming frames: a MESSAGE (from `message`, or already serialized
  // `bytes` when it is null), HEADERS, WINDOW_UPDATE. SendHeaders() sends
  // nothing and returns the error for headers over max_metadata_bytes (or
  // with an empty key).
  void SendStreamMessage(uint64_t call_id,
                         const google::protobuf::Message* message,
                         absl::string_view bytes);
  absl::Status SendHeaders(uint64_t call_id, const Metadata& headers);
  void SendWindowUpdate(uint64_t call_id, uint32_t increment);

  size_t open_calls() const { return calls_.size(); }

  // ServerContext::SetConnectionRateLimitGroup() (loop): the first group
  // wins; the connection moves into it from a zero-delay timer, once the
  // read callback under way has returned (the move switches the connection
  // from its own reads to libevent's, which must not happen while its
  // input is being decoded). Calls admitted until then start after the
  // move, so that their output is limited too.
  absl::Status JoinRateLimitGroup(const transport::RateLimitGroup& group);

  // Memory budget: a call's request bytes held (+) or let go (-). Loop.
  void Charge(int64_t delta) { held_ += delta; }
  // Reports what this connection holds to the server-wide budget, and
  // stops or resumes reading accordingly. Loop.
  void CheckBudget();

  // transport::ConnectionHandler
  size_t OnReadable(transport::Buffer& input) override;
  void OnWritabilityChanged(bool writable) override;
  void OnOutputDrained() override {
    if (http_ == nullptr) CheckBudget();
    PublishStats(nullptr);
  }
  bool OnReadClosed() override;
  void OnClosed(const absl::Status& why) override;

  // FrameSink
  void OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
               size_t payload_size) override;
  void OnOversizedFrame(const wire::FrameMeta& meta,
                        uint64_t payload_size) override;
  bool WantsFrames() override;

 private:
  // OnReadable() for bevrpc frames.
  size_t ReadFrames(transport::Buffer& input);
  void HandleRequest(wire::FrameMeta& meta, transport::Buffer& input,
                     size_t payload_size);
  // MESSAGE, HALF_CLOSE, WINDOW_UPDATE.
  void HandleStreamFrame(const wire::FrameMeta& meta, transport::Buffer& input,
                         size_t payload_size);
  absl::Status CheckRequest(const wire::FrameMeta& meta,
                            const MethodDesc** method);
  absl::Status CheckConcurrency(const MethodDesc** out,
                                const MethodDesc* method);
  // Fault injection and the concurrency limits, before dispatch: false
  // when the call was answered here (aborted or refused). Otherwise
  // *slot holds its admission and *delay its injected delay (0: none).
  bool Admit(uint64_t call_id, const MethodDesc* method, AdmissionSlot* slot,
             absl::Duration* delay);
  // RESPONSE RESOURCE_EXHAUSTED with the bevrpc-retry-pushback-ms trailer.
  void SendOverloaded(uint64_t call_id, const absl::Status& status);
  void HandleCancel(uint64_t call_id);
  // Cancel-storm defence: takes a token for an early cancel; with none
  // left, sends GOAWAY and closes.
  void ChargeEarlyCancel();
  // Cancel-storm defence: a call answered with its handler's result earns
  // a token back, so cancels never outnumbering completed calls are fine.
  void CreditCompletedCall() {
    if (cancel_defence_on()) {
      cancel_tokens_ = std::min<double>(
          cancel_tokens_ + 1, shared_->options.early_cancel_burst);
    }
  }
  bool cancel_defence_on() const {
    return shared_->options.max_early_cancels_per_second != 0;
  }
  // MonotonicNow(), read at most once per read callback.
  absl::Duration ReadTime();
  void SendError(uint64_t call_id, const absl::Status& status);
  // Metrics: a REQUEST answered with `code` before it became a call
  // (refused, unknown method, bad request). `method` is its method if
  // known, else found by `name` (an unknown name counts as "__unknown__").
  void CountRefused(const MethodDesc* method, absl::string_view name,
                    absl::StatusCode code);
  // Puts `trailers` into out_'s meta; false, with *status replaced by the
  // reason, when they are over max_metadata_bytes (or have an empty key).
  bool AddTrailers(const Metadata& trailers, absl::Status* status);
  void SendPong(transport::Buffer& input, size_t payload_size);
  // Ping-flood defence: counts a strike for a PING that came too soon;
  // false (after GOAWAY) when the client has too many.
  bool AcceptPing();
  // A data frame went out: the client may ping again at once.
  void ResetPingStrikes() {
    ping_strikes_ = 0;
    last_ping_ = -absl::InfiniteDuration();
  }
  void SendKeepalivePing(uint64_t counter);
  void OnKeepaliveTimeout();
  // GOAWAY with `status`, then close after flushing.
  void ProtocolError(const absl::Status& status);
  void SendGoAway(const absl::Status& status);
  void UpdateFrameTimer(const transport::Buffer& input);
  // Above max_connection_memory_bytes, or the server above
  // max_server_memory_bytes.
  bool OverBudget() const;
  // The client shut down its sending side and every call is answered.
  void MaybeCloseAfterReadClosed();
  void CheckIdle();
  void MaybeFinishDrain();
  // Sniffing: whether `input` starts with an HTTP method (kHttp), cannot
  // (kRpc), or is too short to tell (kSniff).
  static SessionProtocol Sniff(const transport::Buffer& input);
  // The first read: refuses plaintext on a TLS port and TLS on a
  // plaintext port. Returns false when the session is closing.
  bool CheckTransport(const transport::Buffer& input);
  // Turns this session into an HTTP one; ends every RPC timer.
  void BecomeHttp();
  // Counts bytes read since the last callback into stats_ (entry), and
  // remembers what is left (exit); publishes calls and bytes out.
  void CountInput(const transport::Buffer& input);
  void PublishStats(const transport::Buffer* input);
  // Dispatches the call now, or once the connection is in its rate-limit
  // group (JoinRateLimitGroup()).
  void Dispatch(RefPtr<ServerCall> call, absl::Duration delay);
  // rate_limit_timer_: moves the connection, then starts awaiting_group_.
  void EnterRateLimitGroup();

  const ServerShared* shared_;
  std::unique_ptr<transport::Connection> conn_;
  // JoinRateLimitGroup(): the group (null: none yet), the timer that
  // moves the connection into it (made on first use), and the calls that
  // start once it has, with their fault-injection delay.
  const transport::RateLimitGroup* rate_limit_group_ = nullptr;
  std::unique_ptr<transport::Timer> rate_limit_timer_;
  std::vector<std::pair<RefPtr<ServerCall>, absl::Duration>> awaiting_group_;
  absl::AnyInvocable<void(ServerSession*)> on_closed_;
  FrameDecoder decoder_;
  absl::flat_hash_map<uint64_t, RefPtr<ServerCall>> calls_;
  // The streaming calls among calls_ (they follow connection writability).
  absl::flat_hash_set<ServerCall*> streams_;
  uint64_t last_call_id_ = 0;
  bool draining_ = false;
  bool closing_ = false;
  bool refuse_plaintext_ = false;  // RefusePlaintext().
  bool first_read_ = true;         // Nothing read yet (TLS sniffing).
  // Memory budget: request bytes held by open calls (loop), what this
  // session last reported to shared_->memory, and whether reading is
  // paused for it. While paused, budget_timer_ re-checks every few
  // milliseconds (another connection's release frees server-wide room
  // without telling this one).
  int64_t held_ = 0;
  int64_t output_seen_ = 0;  // Unsent output at the last CheckBudget().
  int64_t charged_ = 0;
  bool budget_paused_ = false;
  transport::Timer budget_timer_;
  // The client shut down its sending side (EOF): no new calls; close once
  // the open ones are answered.
  bool read_closed_ = false;
  uint64_t frames_seen_ = 0;
  uint64_t frames_at_last_idle_check_ = 0;
  transport::Timer frame_timer_;
  transport::Timer idle_timer_;
  // Null when keepalive_time is infinite.
  std::unique_ptr<Keepalive> keepalive_;
  // When the client's last PING arrived (MonotonicNow()); -infinite when a
  // data frame was sent since.
  absl::Duration last_ping_ = -absl::InfiniteDuration();
  int ping_strikes_ = 0;
  // Cancel-storm defence: the token bucket, as of cancel_tokens_at_
  // (MonotonicNow()), and the early cancels counted so far.
  double cancel_tokens_ = 0;
  absl::Duration cancel_tokens_at_;
  uint64_t early_cancels_ = 0;
  // ReadTime()'s clock reading, valid for the current read callback.
  absl::Duration read_time_;
  bool read_time_valid_ = false;
  FrameWriter out_;  // Every frame written, through conn_.
  const MethodDesc* last_method_ = nullptr;  // The last method called.
  // Its admission policy (null: only the server-wide limit applies).
  const MethodPolicy* last_policy_ = nullptr;
  // Its metrics (null: metrics off).
  CallMetrics* last_metrics_ = nullptr;
  uint64_t fault_rng_;  // Fault injection's dice (splitmix64 state).
  CallPool* call_pool_;  // Released (Close()) by the destructor.
  // kSniff until the first bytes tell; then kRpc or kHttp.
  SessionProtocol protocol_;
  // Set once the session is HTTP; then it gets every callback.
  std::unique_ptr<admin::HttpConnection> http_;
  bool counted_http_ = false;  // Counted in shared_->http_connections.
  // For /connections: registered in shared_->connection_table while alive.
  ConnectionStats stats_;
  uint64_t bytes_in_ = 0;
  size_t input_left_ = 0;  // Input unconsumed when the last callback ended.
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_SERVER_SESSION_H_
