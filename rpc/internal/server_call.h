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
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "transport/sync.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/internal/ref_ptr.h"
#include "rpc/method.h"
#include "rpc/server_context.h"
#include "rpc/worker_pool.h"
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
             const MethodDesc* method, const std::string& peer);

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
  Metadata* mutable_metadata() { return &metadata_; }
  Metadata& trailers() { return trailers_; }

  // Runs the handler (inline or on the pool); on the loop thread.
  void Dispatch(WorkerPool* pool);

  // References (RefPtr); any thread.
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref();

  // The handler's result; any thread. Dropped if the call already ended.
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
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  void SetOnCancel(absl::AnyInvocable<void()> cb);
  void RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn);
  void RunOnWorkerPool(absl::AnyInvocable<void()> fn);

 private:
  void RunHandler();
  void FinishOnLoop(absl::Status status);
  void EndCall();
  void Cancel();

  friend class CallPool;
  // Drops what a finished call still holds (loop thread, before reuse).
  void Scrub();

  ServerSession* session_ = nullptr;  // loop; null once detached or finished.
  WorkerPool* workers_ = nullptr;  // Set by Dispatch().
  transport::EventLoop* const loop_;
  CallPool* const pool_;
  std::atomic<int32_t> refs_{0};
  uint64_t call_id_ = 0;
  const MethodDesc* method_ = nullptr;
  std::string peer_;
  absl::Time deadline_ = absl::InfiniteFuture();
  absl::Duration timeout_ = absl::InfiniteDuration();
  Metadata metadata_;
  Metadata trailers_;
  std::unique_ptr<google::protobuf::Message> request_;
  std::unique_ptr<google::protobuf::Message> response_;
  ServerContext context_;
  bool ended_ = false;  // loop
  std::unique_ptr<transport::Timer> deadline_timer_;       // loop
  std::vector<std::unique_ptr<transport::Timer>> timers_;  // loop
  std::atomic<bool> cancelled_{false};
  Mutex mu_;
  absl::AnyInvocable<void()> on_cancel_ ABSL_GUARDED_BY(mu_);
};

// A connection's recycled ServerCalls. Calls are handed out as RefPtrs;
// the last reference returns a call here when it drops on the loop thread
// (the common case: inline handlers), and deletes it otherwise. Create(), Acquire() and Close() on the loop thread. The pool
// counts its owner and every call it handed out, and frees itself when the
// last of them is gone, so calls may outlive the connection.
class CallPool {
 public:
  static CallPool* Create(transport::EventLoop* loop) {
    return new CallPool(loop);
  }
  CallPool(const CallPool&) = delete;
  CallPool& operator=(const CallPool&) = delete;

  RefPtr<ServerCall> Acquire(ServerSession* session, uint64_t call_id,
                                      const MethodDesc* method,
                                      const std::string& peer);

  // The owner lets go: calls returned later are deleted, and the pool with
  // the last of them.
  void Close();

 private:
  // At most this many idle calls are kept per connection.
  static constexpr size_t kMaxIdle = 128;

  explicit CallPool(transport::EventLoop* loop) : loop_(loop) {}
  ~CallPool();
  friend class ServerCall;
  // The last reference to `call` dropped (any thread).
  void Return(ServerCall* call);
  void Release();

  transport::EventLoop* const loop_;
  std::vector<ServerCall*> idle_;  // loop
  std::atomic<bool> closed_{false};
  // The owner (until Close()) plus every call handed out and not returned.
  std::atomic<int64_t> refs_{1};
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_SERVER_CALL_H_
