// ServerCall: the server-side state of one call, shared by the connection's
// session (on the loop thread) and the handler (any thread, through
// ServerContext and Completion). Internal to rpc/.
//
// Threading: fields marked "loop" are touched only on the owning loop
// thread; the rest are immutable after dispatch or guarded by mu_.
#ifndef BEVRPC_RPC_INTERNAL_SERVER_CALL_H_
#define BEVRPC_RPC_INTERNAL_SERVER_CALL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "transport/sync.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/internal/admission.h"
#include "rpc/internal/call_metrics.h"
#include "rpc/internal/call_trace.h"
#include "rpc/interceptor.h"
#include "rpc/internal/cancellation.h"
#include "rpc/internal/ref_ptr.h"
#include "rpc/method.h"
#include "rpc/server_context.h"
#include "rpc/worker_pool.h"
#include "transport/buffer.h"
#include "transport/event_loop.h"

namespace bevrpc::internal {

class ServerSession;

class CallPool;

// Reference-counted (RefPtr): the session's table, the Completion and any
// queued closure each hold a reference; the last one returns the call to its
// CallPool.
class ServerCall {
 public:
  ServerCall(transport::EventLoop* loop, CallPool* pool);
  ~ServerCall();

  // (Re)initializes the call for a new request. A recycled call keeps its
  // request and response messages when the method is the same: Clear()ed,
  // they keep their strings' capacity, so a steady stream of calls
  // allocates nothing here.
  void Reset(ServerSession* session, uint64_t call_id,
             const MethodDesc* method, const std::string& peer,
             std::shared_ptr<const transport::PeerIdentity> identity);

  ServerContext& context() { return context_; }
  google::protobuf::Message* request() { return request_.get(); }
  google::protobuf::Message* response() { return response_.get(); }
  uint64_t call_id() const { return call_id_; }
  const MethodDesc& method() const { return *method_; }
  transport::EventLoop* loop() const { return loop_; }

  // Set before dispatch (loop).
  // The caller's budget, counted from now.
  void set_timeout(absl::Duration timeout) {
    timeout_ = timeout;
    deadline_ = absl::Now() + timeout;
  }
  absl::Duration timeout() const { return timeout_; }
  Metadata* mutable_metadata() { return &metadata_; }
  // Trailers: set by the handler (any thread) while the loop may be ending
  // the call on a deadline, hence the lock.
  void AddTrailer(std::string key, std::string value);
  Metadata TakeTrailers();

  // Memory budget (loop): request bytes this call holds against its
  // session's budget. TakeHeldBytes() hands them all back (the call ends).
  void AddHeldBytes(size_t n) { held_bytes_ += n; }
  size_t TakeHeldBytes() {
    size_t n = held_bytes_;
    held_bytes_ = 0;
    return n;
  }
  // When the REQUEST arrived (MonotonicNow()), for the session's
  // cancel-storm defence; set only while that defence is on.
  void set_opened_at(absl::Duration t) { opened_at_ = t; }
  absl::Duration opened_at() const { return opened_at_; }

  // Metrics (loop): the call's method series (null: metrics off), counted
  // as started now; `start` is when its REQUEST was read (MonotonicNow()).
  // EndCall() records its end: latency from `start` to the RESPONSE
  // queued on the connection (or the call's end without one), and the
  // status code the client was sent (or the reason it ended unanswered).
  void StartMetrics(CallMetrics* metrics, absl::Duration start) {
    metrics_ = metrics;
    metrics_start_ = start;
    metrics->Started();
  }
  CallMetrics* metrics() const { return metrics_; }

  // Interceptors (loop; rpc/interceptor.h): runs each one's OnCallStart in
  // order until one refuses. `start` is when the REQUEST was read
  // (MonotonicNow()). Non-OK: the session must end the call with that
  // status (Abort); the interceptors that said OK hear OnCallEnd then.
  absl::Status StartInterceptors(const ServerInterceptors* chain,
                                 absl::Duration start);
  // The caller's identity as an interceptor set it; "" if none did. Any
  // thread once the handler runs.
  const std::string& principal() const;
  // ServerContext::SetConnectionRateLimitGroup(): on the loop thread, while
  // the call still has its session.
  absl::Status SetConnectionRateLimitGroup(
      const transport::RateLimitGroup& group);

  // Runs the handler (inline or on the pool); on the loop thread.
  // `pool` runs sync unary handlers and RunOnWorkerPool() work;
  // `stream_pool` sync streaming handlers. With a `delay` (fault
  // injection), the handler starts that much later, from a loop timer,
  // unless the call has ended by then (it never starts). The deadline
  // timer runs from now either way.
  void Dispatch(WorkerPool* pool, WorkerPool* stream_pool,
                absl::Duration delay = absl::ZeroDuration());

  // The call's hold on the server's concurrency limits (loop). Given back
  // as the call ends, before its RESPONSE is written, so a client that
  // sees the answer also sees the slot free.
  void set_admission(AdmissionSlot slot) { admission_ = std::move(slot); }

  // References (RefPtr); any thread.
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref();

  // The handler's result, from its Completion: the handler is done with
  // the call. Any thread. Dropped if the call already ended.
  void Complete(absl::Status status);

  // Ends the call without the handler's result: the session answers (or
  // not) and the handler sees the cancellation. Loop thread.
  void Abort(absl::Status status, bool send_response);

  // The session is going away; the call can no longer answer. Loop thread.
  void Detach();

  // ServerContext plumbing.
  absl::Time deadline() const { return deadline_; }
  const Metadata& metadata() const { return metadata_; }
  const std::string& peer() const { return peer_; }
  const transport::PeerIdentity* peer_identity() const {
    return peer_identity_.get();
  }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  void SetOnCancel(absl::AnyInvocable<void()> cb);
  // What outgoing calls made for this one share (CallOptions::From): made
  // on first use, so calls that propagate nothing allocate nothing; already
  // cancelled if the call is. Any thread.
  std::shared_ptr<Cancellation> ChildScope();
  void RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn);
  void RunOnWorkerPool(absl::AnyInvocable<void()> fn);
  // Initial response headers of a stream; any thread, before the first
  // message is written.
  void AddHeader(std::string key, std::string value);
  // Trace context and /rpcz (rpc/internal/call_trace.h): begun by the
  // session before dispatch, ended with the call.
  ServerCallTrace& trace_state() { return trace_; }
  const ServerCallTrace& trace_state() const { return trace_; }
  // The size of the response payload sent (loop); see largest_payload_.
  void NotePayload(size_t bytes) {
    if (bytes > largest_payload_) largest_payload_ = bytes;
  }

  // Streaming calls (server_call_stream.cc). The Stream* calls back
  // ServerStream (rpc/server_stream.h) and may come from any thread.
  bool streaming() const { return method_->kind != MethodKind::kUnary; }
  // The client sends a stream of messages (client streaming, bidi).
  bool client_streams() const {
    return method_->kind == MethodKind::kClientStreaming ||
           method_->kind == MethodKind::kBidiStreaming;
  }
  // The server sends a stream of messages (server streaming, bidi).
  bool server_streams() const {
    return method_->kind == MethodKind::kServerStreaming ||
           method_->kind == MethodKind::kBidiStreaming;
  }
  bool StreamWrite(const google::protobuf::Message& message);
  absl::Status StreamWriteBlocking(const google::protobuf::Message& message);
  void StreamOnWritable(absl::AnyInvocable<void()> cb);
  bool StreamTryRead(google::protobuf::Message* message);
  bool StreamReadBlocking(google::protobuf::Message* message);
  bool StreamAtEnd();
  // The client sent HALF_CLOSE (or its REQUEST was its whole side).
  bool StreamHalfClosed();
  void StreamOnReadable(absl::AnyInvocable<void()> cb);

  // From the session, on the loop thread. StartStream() before dispatch:
  // the client's receive window, the server's, whether the connection is
  // writable and how many bytes of unsent messages a call may queue.
  void StartStream(uint32_t client_window, uint32_t server_window,
                   bool conn_writable, size_t write_buffer_bytes,
                   size_t max_message_bytes);
  // A MESSAGE / HALF_CLOSE / WINDOW_UPDATE for this call; an error fails it.
  absl::Status OnStreamMessage(transport::Buffer& input, size_t payload_size);
  absl::Status OnHalfClose();
  absl::Status OnWindowUpdate(uint32_t increment);
  void OnConnectionWritable(bool writable);
  // Gives the memory budget back the bytes of messages the handler has
  // read; true if there were any. Loop.
  bool ReleaseConsumed();

 private:
  void RunHandler();
  // Marks the handler running and starts it (inline or on the pool).
  void StartHandler();
  // A result on the call's behalf, not from its Completion (a handler that
  // threw, a deadline before a queued handler ran); `handler_done` when
  // the handler will never run. Any thread.
  void CompleteInternal(absl::Status status, bool handler_done);
  void FinishOnLoop(absl::Status status, bool handler_done);
  // Queues `fn` on the worker pool; `is_handler` for the handler itself
  // (which, skipped or failed there, is done with the call).
  void SubmitToWorkers(absl::AnyInvocable<void()> fn, bool is_handler);
  // The handler let go of the call (loop): it no longer counts against the
  // connection's concurrency limit.
  void HandlerDone();
  // When the call ended (MonotonicNow()), read once and only if the trace,
  // the interceptors or the metrics want it: they share one clock read.
  absl::Duration EndTime() const;
  // `now`: EndTime().
  void EndCall(absl::Duration now);
  // Marks the call cancelled, cancels the outgoing calls made for it
  // (CANCELLED, or DEADLINE_EXCEEDED if `why` is), then runs OnCancel's
  // callback (loop).
  void Cancel(const absl::Status& why);

  // Streaming internals (loop unless noted).
  // Sends queued messages while credit and the connection allow; sends the
  // final RESPONSE once a finishing call's queue is empty.
  void Pump();
  // Any thread: posts a Pump() to the loop. The caller has just set
  // stream_.pump_scheduled, so at most one is queued.
  void PostPump();
  // Loop thread: posts the end of a Write() burst (stream_.loop_burst back
  // to 0, then wakes the writer). The caller has just set
  // stream_.burst_reset_posted, so at most one is queued.
  void PostBurstReset();
  // HEADERS, if the handler set any and they are not sent yet. Headers
  // over max_metadata_bytes are not sent: the call ends with
  // RESOURCE_EXHAUSTED instead (check ended_ after this).
  void SendHeadersOnce();
  // Any thread: grants the client the credit consumed by reads.
  void GrantConsumed();
  bool CanAcceptLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes blocked readers and writers and runs registered callbacks (at
  // the end of the call, or when the stream changed state).
  void WakeStream(bool writable, bool readable);
  // Takes the next inbound message; sets *grant when credit is due.
  bool PopInboundLocked(google::protobuf::Message* message,
                        std::unique_ptr<google::protobuf::Message>* taken,
                        bool* grant) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves `taken` into `message`, keeps it as a spare, grants credit.
  void FinishRead(google::protobuf::Message* message,
                  std::unique_ptr<google::protobuf::Message> taken,
                  bool grant);
  // The handler finished: true to answer now; false when the answer waits
  // for queued messages (Pump() sends it) or the call was finished before.
  bool BeginFinishStream(const absl::Status& status);
  // Any thread: a message over max_message_bytes fails the call with
  // RESOURCE_EXHAUSTED rather than reach a peer that would refuse it.
  // Returns false (and fails the call) if `bytes` is too big.
  bool CheckOutgoingSize(size_t bytes);
  // Sends the RESPONSE and ends the call (loop).
  void SendFinal(const absl::Status& status);
  // The call ended (loop): writes and reads fail from now on.
  void EndStream(const absl::Status& why);
  // Back to a fresh stream for reuse; keeps spare messages (loop).
  void ResetStream();

  static constexpr size_t kMaxSpareMessages = 16;
  // Reads report to the memory budget at least every this many bytes.
  static constexpr size_t kReleaseBytes = 64 * 1024;
  // A spare stream message is kept only when its buffers are at most this
  // large.
  static constexpr size_t kMaxKeptPayloadBytes = 16 * 1024;

  friend class CallPool;
  // Drops what a finished call still holds (loop thread, before reuse);
  // keeps its messages' buffers when they fit `room` bytes. Returns the
  // bytes kept (also in retained_).
  size_t Scrub(size_t room);
  size_t retained_ = 0;  // loop: counted in pool_->retained_bytes_

  ServerSession* session_ = nullptr;  // loop; null once detached or finished.
  WorkerPool* workers_ = nullptr;  // Set by Dispatch().
  WorkerPool* stream_workers_ = nullptr;  // Set by Dispatch().
  WorkerPool* PoolFor(bool is_handler) const;
  transport::EventLoop* const loop_;
  CallPool* const pool_;
  std::atomic<int32_t> refs_{0};
  uint64_t call_id_ = 0;
  const MethodDesc* method_ = nullptr;
  std::string peer_;
  std::shared_ptr<const transport::PeerIdentity> peer_identity_;
  absl::Time deadline_ = absl::InfiniteFuture();
  absl::Duration timeout_ = absl::InfiniteDuration();
  Metadata metadata_;
  Metadata trailers_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<google::protobuf::Message> request_;
  std::unique_ptr<google::protobuf::Message> response_;
  ServerContext context_;
  bool ended_ = false;  // loop
  // Dispatched, and its Completion not finished yet (loop). A call that
  // ends while this is true is counted in pool_->ended_running_ until it
  // turns false.
  bool handler_running_ = false;
  bool counted_ended_running_ = false;  // loop: in pool_->ended_running_
  absl::Duration opened_at_;  // loop
  absl::Status end_status_;  // loop: why it ended, if not finished normally
  // Interceptors (loop): the chain, when one ran for this call (else null),
  // and the call's record for them, kept across recycling.
  struct Intercepted {
    ServerCallInfo info;
    std::vector<std::any> states;
    size_t started = 0;  // Interceptors whose OnCallStart said OK.
    absl::Duration start;
    absl::Status status;  // The status the call ended with.
  };
  const ServerInterceptors* interceptors_ = nullptr;
  std::unique_ptr<Intercepted> intercepted_;
  // Runs OnCallEnd of the interceptors that started (loop).
  void EndInterceptors(absl::Duration now);
  CallMetrics* metrics_ = nullptr;  // loop; see StartMetrics()
  absl::Duration metrics_start_;    // loop
  absl::StatusCode final_code_ = absl::StatusCode::kOk;  // loop
  ServerCallTrace trace_;
  // Records the ended call in /rpcz, if it is recorded (loop).
  void EndTrace(const absl::Status& status, absl::Duration now);
  std::unique_ptr<transport::Timer> deadline_timer_;       // loop
  // RunAfter() timers, by id; each erases itself when it fires (loop).
  absl::flat_hash_map<uint64_t, std::unique_ptr<transport::Timer>> timers_;
  uint64_t next_timer_id_ = 0;  // loop
  size_t held_bytes_ = 0;       // loop
  AdmissionSlot admission_;     // loop
  // The largest request or response payload of the call: a recycled call
  // keeps its messages only when this is small (loop).
  size_t largest_payload_ = 0;
  std::atomic<bool> cancelled_{false};
  // AddHeader() / AddTrailer() were called (so SendHeadersOnce() and
  // TakeTrailers() have work).
  std::atomic<bool> headers_added_{false};
  std::atomic<bool> trailers_added_{false};
  Mutex mu_;
  absl::AnyInvocable<void()> on_cancel_ ABSL_GUARDED_BY(mu_);
  // Outgoing calls made for this one (null until ChildScope()), and why the
  // call was cancelled (OK until it is).
  std::shared_ptr<Cancellation> child_scope_ ABSL_GUARDED_BY(mu_);
  absl::Status cancel_reason_ ABSL_GUARDED_BY(mu_);

  // Streaming state. Queues hold serialized outbound messages (waiting for
  // credit or the connection) and parsed inbound ones (waiting to be read).
  struct Inbound {
    std::unique_ptr<google::protobuf::Message> message;
    size_t bytes = 0;
  };
  struct Stream {
    // Outbound (server to client).
    std::deque<std::string> out;
    size_t out_bytes = 0;
    size_t write_buffer_bytes = 0;
    size_t max_message_bytes = 0;
    int64_t send_credit = 0;
    bool conn_writable = true;
    bool pump_scheduled = false;
    bool finishing = false;  // The handler finished; queue draining.
    // Messages taken by Write() on the loop thread since the last posted
    // reset: at kMaxLoopBurst the stream is not writable until the loop
    // has turned (empty messages cost no credit; see server_call_stream.cc).
    uint32_t loop_burst = 0;
    bool burst_reset_posted = false;
    absl::Status final_status;
    absl::AnyInvocable<void()> on_writable;
    Metadata headers;
    bool headers_sent = false;
    // Inbound (client to server).
    std::deque<Inbound> in;
    std::vector<std::unique_ptr<google::protobuf::Message>> spare;
    uint64_t granted = 0;   // Total credit granted to the client.
    uint64_t received = 0;  // Total MESSAGE bytes received.
    uint64_t consumed_unannounced = 0;
    uint64_t consumed_unreleased = 0;  // Read, still held in the budget.
    uint32_t window = 0;
    bool half_closed = false;
    bool grant_scheduled = false;
    absl::AnyInvocable<void()> on_readable;
    bool ended = false;  // The call ended: reads and writes fail.
    absl::Status end_status;  // Why, when it was not a normal finish.
  };
  Stream stream_ ABSL_GUARDED_BY(mu_);
  CondVar stream_cv_;
};

// A connection's recycled ServerCalls. Calls are handed out as RefPtrs;
// the last reference returns a call here when it drops on the loop thread
// (the common case: inline handlers), and deletes it otherwise. Create(), Acquire() and Close() on the loop thread. The pool
// counts its owner and every call it handed out, and frees itself when the
// last of them is gone, so calls may outlive the connection. `live` (the
// server's count of pools not yet freed, borrowed) is incremented here and
// decremented as the pool's last act: a server that sees it at 0 knows no
// call can touch its loops any more.
class CallPool {
 public:
  static CallPool* Create(transport::EventLoop* loop,
                          std::atomic<int64_t>* live) {
    return new CallPool(loop, live);
  }
  CallPool(const CallPool&) = delete;
  CallPool& operator=(const CallPool&) = delete;

  RefPtr<ServerCall> Acquire(
      ServerSession* session, uint64_t call_id, const MethodDesc* method,
      const std::string& peer,
      const std::shared_ptr<const transport::PeerIdentity>& identity);

  // Calls that have ended (cancelled, timed out, connection gone) while
  // their handler still holds them. They count against
  // max_concurrent_calls_per_connection like open calls. Loop thread.
  size_t ended_running() const { return ended_running_; }

  // The owner lets go: calls returned later are deleted, and the pool with
  // the last of them.
  void Close();

 private:
  // At most this many idle calls are kept per connection.
  static constexpr size_t kMaxIdle = 128;
  // Idle calls keep their messages' buffers (request and response, so
  // twice the largest payload) within this many bytes per connection; the
  // rest start with fresh messages. Default traffic (small calls) never
  // gets near it; a burst of large calls pins at most this much.
  static constexpr size_t kMaxRetainedBytes = 1024 * 1024;

  CallPool(transport::EventLoop* loop, std::atomic<int64_t>* live)
      : loop_(loop), live_(live) {
    live_->fetch_add(1, std::memory_order_relaxed);
  }
  ~CallPool();
  friend class ServerCall;
  // The last reference to `call` dropped (any thread).
  void Return(ServerCall* call);
  void Release();

  transport::EventLoop* const loop_;
  std::atomic<int64_t>* const live_;
  std::vector<ServerCall*> idle_;  // loop
  size_t retained_bytes_ = 0;      // loop: buffers kept by idle_ calls
  size_t ended_running_ = 0;       // loop
  std::atomic<bool> closed_{false};
  // The owner (until Close()) plus every call handed out and not returned.
  std::atomic<int64_t> refs_{1};
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_SERVER_CALL_H_
