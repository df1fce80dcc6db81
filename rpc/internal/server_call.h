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
#include "rpc/method.h"
#include "rpc/server_context.h"
#include "rpc/worker_pool.h"
#include "transport/event_loop.h"

namespace bevrpc::internal {

class ServerSession;

class ServerCall : public std::enable_shared_from_this<ServerCall> {
 public:
  ServerCall(ServerSession* session, transport::EventLoop* loop,
             uint64_t call_id, const MethodDesc* method, std::string peer);
  ~ServerCall();

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

  ServerSession* session_;  // loop; null once detached or finished.
  WorkerPool* pool_ = nullptr;  // Set by Dispatch().
  transport::EventLoop* const loop_;
  const uint64_t call_id_;
  const MethodDesc* const method_;
  const std::string peer_;
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

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_SERVER_CALL_H_
