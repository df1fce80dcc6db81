#include "rpc/internal/server_call.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/internal/server_session.h"

namespace bevrpc::internal {

ServerCall::ServerCall(transport::EventLoop* loop, CallPool* pool)
    : loop_(loop), pool_(pool), context_(this) {}

void ServerCall::Reset(
    ServerSession* session, uint64_t call_id, const MethodDesc* method,
    const std::string& peer,
    std::shared_ptr<const transport::PeerIdentity> identity) {
  session_ = session;
  call_id_ = call_id;
  if (method_ != method || request_ == nullptr || response_ == nullptr) {
    {
      MutexLock lock(&mu_);
      stream_.spare.clear();  // Spare messages of the old request type.
    }
    request_.reset(method->request_prototype->New());
    response_.reset(method->response_prototype->New());
    method_ = method;
  }
  peer_ = peer;
  peer_identity_ = std::move(identity);
  deadline_ = absl::InfiniteFuture();
  timeout_ = absl::InfiniteDuration();
  ended_ = false;
  handler_running_ = false;
  counted_ended_running_ = false;
  end_status_ = absl::OkStatus();
  metrics_ = nullptr;
  interceptors_ = nullptr;
  if (intercepted_ != nullptr) intercepted_->info.principal.clear();
  final_code_ = absl::StatusCode::kOk;
  cancelled_.store(false, std::memory_order_relaxed);
}

size_t ServerCall::Scrub(size_t room) {
  // Clear() keeps strings' capacity, which saves an allocation (and for
  // large messages, page faults) per call; but a burst of large calls must
  // not pin that memory in every recycled call until the connection
  // closes. The pool lends each call `room` bytes of retention.
  const size_t retained =
      request_ == nullptr ? 0 : 2 * largest_payload_;
  size_t kept = 0;
  if (request_ != nullptr && response_ != nullptr && retained <= room) {
    request_->Clear();
    response_->Clear();
    kept = retained;
  } else {
    // Fresh messages are made on the next Reset().
    request_.reset();
    response_.reset();
  }
  retained_ = kept;
  admission_.Release();
  largest_payload_ = 0;
  held_bytes_ = 0;
  if (headers_added_.load(std::memory_order_relaxed)) {
    // ResetStream() covers streams; a unary call's headers too.
    headers_added_.store(false, std::memory_order_relaxed);
    MutexLock lock(&mu_);
    stream_.headers.clear();
    stream_.headers_sent = false;
  }
  metadata_.clear();
  {
    MutexLock lock(&mu_);
    trailers_.clear();
    trailers_added_.store(false, std::memory_order_relaxed);
    on_cancel_ = nullptr;
    // Outgoing calls still open keep their own reference.
    child_scope_ = nullptr;
    cancel_reason_ = absl::OkStatus();
  }
  if (deadline_timer_ != nullptr) deadline_timer_->Cancel();
  timers_.clear();
  workers_ = nullptr;
  stream_workers_ = nullptr;
  ResetStream();
  return kept;
}

void ServerCall::AddTrailer(std::string key, std::string value) {
  MutexLock lock(&mu_);
  trailers_[std::move(key)] = std::move(value);
  trailers_added_.store(true, std::memory_order_release);
}

Metadata ServerCall::TakeTrailers() {
  Metadata taken;
  // Most calls set no trailers: no lock for them.
  if (!trailers_added_.load(std::memory_order_acquire)) return taken;
  MutexLock lock(&mu_);
  taken.swap(trailers_);
  return taken;
}

ServerCall::~ServerCall() = default;

CallPool::~CallPool() {
  for (ServerCall* call : idle_) delete call;
  // Last: the server may destroy its loops once every pool is gone.
  live_->fetch_sub(1, std::memory_order_release);
}

RefPtr<ServerCall> CallPool::Acquire(
    ServerSession* session, uint64_t call_id, const MethodDesc* method,
    const std::string& peer,
    const std::shared_ptr<const transport::PeerIdentity>& identity) {
  ServerCall* call;
  if (idle_.empty()) {
    call = new ServerCall(loop_, this);
  } else {
    call = idle_.back();
    idle_.pop_back();
    retained_bytes_ -= call->retained_;
    call->retained_ = 0;
  }
  call->Reset(session, call_id, method, peer, identity);
  refs_.fetch_add(1, std::memory_order_relaxed);
  return RefPtr<ServerCall>(call);
}

void CallPool::Close() {
  closed_.store(true, std::memory_order_release);
  Release();
}

void CallPool::Release() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void ServerCall::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) pool_->Return(this);
}

void CallPool::Return(ServerCall* call) {
  // Only the loop thread touches the idle list; elsewhere (a worker dropped
  // the last reference) the call is simply deleted.
  if (loop_->IsInLoopThread() && !closed_.load(std::memory_order_acquire) &&
      idle_.size() < kMaxIdle) {
    retained_bytes_ += call->Scrub(kMaxRetainedBytes - retained_bytes_);
    idle_.push_back(call);
  } else {
    delete call;
  }
  Release();
}

void ServerCall::Dispatch(WorkerPool* pool, WorkerPool* stream_pool,
                          absl::Duration delay) {
  workers_ = pool;
  stream_workers_ = stream_pool;
  if (deadline_ != absl::InfiniteFuture()) {
    if (deadline_timer_ == nullptr) {
      deadline_timer_ = std::make_unique<transport::Timer>(loop_);
    }
    deadline_timer_->Start(deadline_ - absl::Now(), [this] {
      Abort(absl::DeadlineExceededError(absl::StrCat(
                "deadline exceeded: ", method_->full_name,
                " did not finish within the caller's ",
                absl::FormatDuration(timeout_))),
            /*send_response=*/true);
    });
  }
  if (delay > absl::ZeroDuration()) {
    // A RunAfter() timer: dropped unrun if the call ends first (cancel,
    // deadline, connection closed), so the handler never sees it.
    RunAfter(delay, [this] { StartHandler(); });
    return;
  }
  StartHandler();
}

void ServerCall::StartHandler() {
  handler_running_ = true;
  if (method_->mode == ExecutionMode::kInline) {
    RunHandler();
    return;
  }
  SubmitToWorkers([this] { RunHandler(); }, /*is_handler=*/true);
}

WorkerPool* ServerCall::PoolFor(bool is_handler) const {
  // A sync stream handler holds its thread for the stream's whole life: it
  // runs on the elastic stream pool, so that open streams never take the
  // threads unary handlers need.
  return is_handler && streaming() && stream_workers_ != nullptr
             ? stream_workers_
             : workers_;
}

void ServerCall::RunOnWorkerPool(absl::AnyInvocable<void()> fn) {
  SubmitToWorkers(std::move(fn), /*is_handler=*/false);
}

void ServerCall::SubmitToWorkers(absl::AnyInvocable<void()> fn,
                                 bool is_handler) {
  RefPtr<ServerCall> self = RefPtr<ServerCall>(this);
  absl::Status queued =
      PoolFor(is_handler)->Submit([self, fn = std::move(fn),
                                   is_handler]() mutable {
        // Work that can no longer be answered is skipped; a handler skipped
        // here still has to let go of its slot.
        if (self->cancelled()) {
          if (is_handler) {
            self->CompleteInternal(
                absl::CancelledError("call ended before its handler started"),
                /*handler_done=*/true);
          }
          return;
        }
        if (absl::Now() >= self->deadline_) {
          self->CompleteInternal(
              absl::DeadlineExceededError(
                  absl::StrCat("deadline exceeded before ",
                               self->method_->full_name, " started")),
              is_handler);
          return;
        }
        fn();
      });
  if (!queued.ok()) {
    // Full (RESOURCE_EXHAUSTED: the client may retry elsewhere) or
    // shutting down (UNAVAILABLE): the call fails at once.
    CompleteInternal(std::move(queued), is_handler);
  }
}

void ServerCall::RunHandler() {
  Completion done(RefPtr<ServerCall>(this));
  trace_.HandlerStarted();
  try {
    (*method_->handler)(context_, *request_, response_.get(), std::move(done));
  } catch (const std::exception& e) {
    // The Completion, if the handler still holds it, decides when the
    // handler is done; this only ends the call.
    CompleteInternal(absl::InternalError(absl::StrCat(
                         method_->full_name, " handler threw: ", e.what())),
                     /*handler_done=*/false);
  } catch (...) {
    CompleteInternal(absl::InternalError(absl::StrCat(
                         method_->full_name, " handler threw an exception")),
                     /*handler_done=*/false);
  }
}

void ServerCall::Complete(absl::Status status) {
  CompleteInternal(std::move(status), /*handler_done=*/true);
}

void ServerCall::CompleteInternal(absl::Status status, bool handler_done) {
  if (loop_->IsInLoopThread()) {
    FinishOnLoop(std::move(status), handler_done);
    return;
  }
  // Two closures rather than a captured flag: RefPtr + Status fill
  // AnyInvocable's inline storage (two pointers); a third field would not
  // fit, and every completion from a worker thread would allocate.
  if (handler_done) {
    loop_->Post([self = RefPtr<ServerCall>(this),
                 status = std::move(status)]() mutable {
      self->FinishOnLoop(std::move(status), /*handler_done=*/true);
    });
  } else {
    loop_->Post([self = RefPtr<ServerCall>(this),
                 status = std::move(status)]() mutable {
      self->FinishOnLoop(std::move(status), /*handler_done=*/false);
    });
  }
}

void ServerCall::FinishOnLoop(absl::Status status, bool handler_done) {
  if (handler_done) HandlerDone();
  if (ended_) return;  // Cancelled or timed out: the late result is dropped.
  // A stream answers after the messages still queued for credit.
  if (streaming() && !BeginFinishStream(status)) return;
  SendFinal(status);
}

void ServerCall::HandlerDone() {
  if (!handler_running_) return;
  handler_running_ = false;
  trace_.HandlerEnded();
  if (counted_ended_running_) {
    counted_ended_running_ = false;
    --pool_->ended_running_;
  }
}

void ServerCall::SendFinal(const absl::Status& status) {
  RefPtr<ServerCall> self(this);
  SendHeadersOnce();
  if (ended_) return;  // Headers over the limit ended the call.
  ended_ = true;
  admission_.ReleaseAnswered();  // Free before the client can see it.
  final_code_ = status.code();
  if (session_ != nullptr) {
    final_code_ = session_->SendResponse(this, status, /*handler_result=*/true);
  }
  end_status_ = absl::OkStatus();
  if (interceptors_ != nullptr) {
    intercepted_->status =
        final_code_ == status.code()
            ? status
            : absl::Status(final_code_, "the response could not be sent as "
                                        "the handler gave it");
  }
  const absl::Duration now = EndTime();
  EndTrace(status, now);
  EndCall(now);
}

void ServerCall::Abort(absl::Status status, bool send_response) {
  if (ended_) return;
  RefPtr<ServerCall> self = RefPtr<ServerCall>(this);
  ended_ = true;
  // Free before the client sees the answer or the handler the cancel.
  admission_.Release();
  final_code_ = status.code();
  if (send_response && session_ != nullptr) {
    SendHeadersOnce();
    final_code_ =
        session_->SendResponse(this, status, /*handler_result=*/false);
  }
  end_status_ = status;
  if (interceptors_ != nullptr) intercepted_->status = status;
  const absl::Duration now = EndTime();
  EndTrace(status, now);
  Cancel(status);
  EndCall(now);
}

void ServerCall::Detach() {
  RefPtr<ServerCall> self = RefPtr<ServerCall>(this);
  session_ = nullptr;
  Abort(absl::CancelledError("connection closed"), /*send_response=*/false);
}

absl::Status ServerCall::StartInterceptors(const ServerInterceptors* chain,
                                           absl::Duration start) {
  if (intercepted_ == nullptr) intercepted_ = std::make_unique<Intercepted>();
  Intercepted& ic = *intercepted_;
  interceptors_ = chain;
  ic.info.method = method_->full_name;
  ic.info.kind = method_->kind;
  ic.info.metadata = &metadata_;
  ic.info.peer = peer_;
  ic.info.peer_identity = peer_identity_.get();
  ic.info.context = &context_;
  ic.info.deadline = deadline_;
  ic.info.principal.clear();
  ic.states.resize(chain->size());
  ic.started = 0;
  ic.start = start;
  ic.status = absl::OkStatus();
  for (const std::shared_ptr<ServerInterceptor>& interceptor : *chain) {
    std::any& state = ic.states[ic.started];
    state.reset();
    absl::Status s = interceptor->OnCallStart(ic.info, state);
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kOk) s = absl::UnknownError("");
      return s;
    }
    ++ic.started;
  }
  return absl::OkStatus();
}

const std::string& ServerCall::principal() const {
  static const std::string* const kNone = new std::string();
  return intercepted_ != nullptr ? intercepted_->info.principal : *kNone;
}

absl::Status ServerCall::SetConnectionRateLimitGroup(
    const transport::RateLimitGroup& group) {
  if (!loop_->IsInLoopThread()) {
    return absl::FailedPreconditionError(
        "SetConnectionRateLimitGroup() must be called on the call's I/O "
        "loop thread");
  }
  if (session_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "call ", call_id_, " has ended: its connection is not known any more"));
  }
  return session_->JoinRateLimitGroup(group);
}

absl::Duration ServerCall::EndTime() const {
  if (!trace_.recording() && interceptors_ == nullptr && metrics_ == nullptr) {
    return absl::ZeroDuration();  // Nobody looks at it.
  }
  return MonotonicNow();
}

void ServerCall::EndInterceptors(absl::Duration now) {
  const ServerInterceptors* chain = interceptors_;
  interceptors_ = nullptr;
  Intercepted& ic = *intercepted_;
  const absl::Duration latency = now - ic.start;
  while (ic.started > 0) {
    --ic.started;
    (*chain)[ic.started]->OnCallEnd(ic.info, ic.states[ic.started], ic.status,
                                    latency);
    ic.states[ic.started].reset();
  }
}

void ServerCall::EndCall(absl::Duration now) {
  admission_.Release();  // Normally done already (SendFinal, Abort).
  if (interceptors_ != nullptr) EndInterceptors(now);
  if (metrics_ != nullptr) {
    metrics_->Ended(final_code_, now - metrics_start_);
    metrics_ = nullptr;
  }
  if (session_ != nullptr) {
    session_->RemoveCall(call_id_);
    session_ = nullptr;
  }
  if (handler_running_ && !counted_ended_running_) {
    // Still the handler's until it lets go: the slot stays taken.
    counted_ended_running_ = true;
    ++pool_->ended_running_;
  }
  // Destroying pending RunAfter closures may destroy a Completion, which
  // calls back into Complete(): ended_ is already set, so that is a no-op.
  if (deadline_timer_ != nullptr) deadline_timer_->Cancel();
  if (streaming()) EndStream(end_status_);
  absl::flat_hash_map<uint64_t, std::unique_ptr<transport::Timer>> timers;
  timers.swap(timers_);
  timers.clear();
}

void ServerCall::Cancel(const absl::Status& why) {
  cancelled_.store(true, std::memory_order_release);
  // Outgoing calls end with CANCELLED, or DEADLINE_EXCEEDED when that is
  // what ended this one (not UNAVAILABLE, RESOURCE_EXHAUSTED...: nothing
  // is wrong with the downstream server).
  const absl::Status reason =
      why.code() == absl::StatusCode::kDeadlineExceeded
          ? absl::DeadlineExceededError(absl::StrCat(
                "the incoming call ", method_->full_name,
                " ran out of time: ", why.message()))
          : absl::CancelledError(absl::StrCat("the incoming call ",
                                              method_->full_name,
                                              " was cancelled: ",
                                              why.message()));
  absl::AnyInvocable<void()> cb;
  std::shared_ptr<Cancellation> children;
  {
    MutexLock lock(&mu_);
    cb = std::move(on_cancel_);
    children = child_scope_;
    cancel_reason_ = reason;
  }
  // Outgoing calls first: an OnCancel callback that starts one then finds
  // the scope cancelled, and the call fails unsent.
  if (children != nullptr) children->Cancel(reason);
  if (cb) cb();
}

std::shared_ptr<Cancellation> ServerCall::ChildScope() {
  MutexLock lock(&mu_);
  if (child_scope_ == nullptr) {
    child_scope_ = std::make_shared<Cancellation>(deadline_);
    // Cancelled before anyone asked: Cancel() found no scope to cancel.
    if (!cancel_reason_.ok()) child_scope_->Cancel(cancel_reason_);
  }
  return child_scope_;
}

void ServerCall::EndTrace(const absl::Status& status, absl::Duration now) {
  uint64_t request_bytes = trace_.request_bytes();
  uint64_t response_bytes = 0;
  if (client_streams()) {
    MutexLock lock(&mu_);
    request_bytes = stream_.received;
  } else if (status.ok() && response_ != nullptr) {
    // SendResponse() sized it.
    response_bytes = static_cast<uint64_t>(response_->GetCachedSize());
  }
  trace_.End(status, method_->full_name, peer_, request_bytes, response_bytes,
             now);
}

void ServerCall::SetOnCancel(absl::AnyInvocable<void()> cb) {
  {
    MutexLock lock(&mu_);
    if (!cancelled()) {
      on_cancel_ = std::move(cb);
      return;
    }
  }
  loop_->Post(std::move(cb));
}

void ServerCall::RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) {
  if (!loop_->IsInLoopThread()) {
    loop_->Post([self = RefPtr<ServerCall>(this), delay, fn = std::move(fn)]() mutable {
      self->RunAfter(delay, std::move(fn));
    });
    return;
  }
  if (ended_) return;
  // Freed as it fires: a long stream paced by RunAfter() keeps one timer,
  // not one per message.
  const uint64_t id = next_timer_id_++;
  auto timer = std::make_unique<transport::Timer>(loop_);
  transport::Timer* raw = timer.get();
  timers_.emplace(id, std::move(timer));
  raw->Start(delay, [this, id, fn = std::move(fn)]() mutable {
    // The Timer (and this closure's storage) go first; `fn` was moved out.
    absl::AnyInvocable<void()> run = std::move(fn);
    timers_.erase(id);
    run();
  });
}

}  // namespace bevrpc::internal

namespace bevrpc {

absl::Time ServerContext::deadline() const { return call_->deadline(); }
const Metadata& ServerContext::metadata() const { return call_->metadata(); }
const std::string& ServerContext::method() const {
  return call_->method().full_name;
}
const std::string& ServerContext::peer() const { return call_->peer(); }
const PeerIdentity* ServerContext::peer_identity() const {
  return call_->peer_identity();
}
const std::string& ServerContext::principal() const {
  return call_->principal();
}
const trace::TraceContext& ServerContext::trace() const {
  return call_->trace_state().context();
}
void ServerContext::AddTrailer(std::string key, std::string value) {
  call_->AddTrailer(std::move(key), std::move(value));
}
void ServerContext::AddHeader(std::string key, std::string value) {
  call_->AddHeader(std::move(key), std::move(value));
}
bool ServerContext::IsCancelled() const { return call_->cancelled(); }
void ServerContext::OnCancel(absl::AnyInvocable<void()> callback) {
  call_->SetOnCancel(std::move(callback));
}
void ServerContext::RunAfter(absl::Duration delay,
                             absl::AnyInvocable<void()> fn) {
  call_->RunAfter(delay, std::move(fn));
}
void ServerContext::RunOnWorkerPool(absl::AnyInvocable<void()> fn) {
  call_->RunOnWorkerPool(std::move(fn));
}
absl::Status ServerContext::SetConnectionRateLimitGroup(
    const transport::RateLimitGroup& group) {
  return call_->SetConnectionRateLimitGroup(group);
}

Completion::Completion(internal::RefPtr<internal::ServerCall> call)
    : call_(std::move(call)) {}

Completion::Completion(Completion&& other) noexcept
    : call_(std::move(other.call_)) {}

Completion& Completion::operator=(Completion&& other) {
  if (this != &other) {
    if (call_ != nullptr) {
      call_->Complete(absl::InternalError("handler dropped the call"));
    }
    call_ = std::move(other.call_);
  }
  return *this;
}

Completion::~Completion() {
  if (call_ == nullptr) return;
  internal::RefPtr<internal::ServerCall> call = std::move(call_);
  call->Complete(absl::InternalError(absl::StrCat(
      call->method().full_name,
      " handler returned or threw without finishing the call")));
}

void Completion::Finish(absl::Status status) && {
  if (call_ == nullptr) return;  // Finished already.
  internal::RefPtr<internal::ServerCall> call = std::move(call_);
  call->Complete(std::move(status));
}

}  // namespace bevrpc
