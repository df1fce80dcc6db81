#include "rpc/channel.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "transport/sync.h"
#include "rpc/internal/client_interceptors.h"
#include "rpc/internal/byte_budget.h"
#include "rpc/balancing/picker.h"
#include "rpc/internal/call_policy.h"
#include "rpc/internal/call_trace.h"
#include "rpc/internal/hedged_call.h"
#include "rpc/internal/client_metrics.h"
#include "rpc/internal/client_slot.h"
#include "rpc/internal/endpoint_set.h"
#include "rpc/naming/resolvers.h"
#include "rpc/naming/target.h"
#include "rpc/internal/metadata_limits.h"
#include "rpc/internal/propagation.h"

namespace bevrpc {

absl::StatusOr<std::unique_ptr<Channel>> Channel::Create(
    absl::string_view target, ChannelOptions options) {
  if (options.num_connections < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_connections must be >= 1, got ", options.num_connections));
  }
  absl::Status limits_ok = ValidateFrameLimits(options.limits);
  if (!limits_ok.ok()) return limits_ok;
  absl::Status outlier_ok =
      balancing::ValidateOutlierDetection(options.outlier_detection);
  if (!outlier_ok.ok()) return outlier_ok;
  absl::StatusOr<naming::Target> parsed = naming::ParseTarget(target);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<balancing::Policy> policy =
      balancing::ParsePolicy(options.load_balancer);
  if (!policy.ok()) return policy.status();
  auto policies = internal::CallPolicies::Create(options.service_config,
                                                options.idempotent_retry);
  if (!policies.ok()) return policies.status();
  std::unique_ptr<Channel> channel(new Channel());
  channel->policies_ = *std::move(policies);
  channel->target_ = std::string(target);
  channel->options_ = std::move(options);
  transport::LoopPool* loops = channel->options_.loops;
  if (loops == nullptr) {
    auto owned = transport::LoopPool::Start(channel->options_.io_threads,
                                            "bevrpc-client");
    if (!owned.ok()) return owned.status();
    channel->owned_loops_ = *std::move(owned);
    loops = channel->owned_loops_.get();
  }
  // Borrowed pools are shared: start on the loop the pool hands out next.
  transport::EventLoop* first = loops->Next();
  int offset = 0;
  for (int i = 0; i < loops->size(); ++i) {
    if (loops->loop(i) == first) offset = i;
  }
  for (int i = 0; i < loops->size(); ++i) {
    channel->loops_.push_back(loops->loop((offset + i) % loops->size()));
  }
  // Resolvers that hold libevent state (evdns, evhttp) are created on
  // their loop; HOST:PORT and list:/// resolve names here, off the loops.
  absl::StatusOr<std::unique_ptr<naming::Resolver>> resolver =
      absl::InternalError("resolver not created");
  transport::EventLoop* control = channel->loops_[0];
  const bool static_target =
      parsed->scheme == naming::Target::Scheme::kHostPort ||
      parsed->scheme == naming::Target::Scheme::kList;
  if (static_target || control->IsInLoopThread()) {
    resolver = naming::CreateResolver(*parsed, control,
                                      channel->options_.resolver);
  } else {
    Notification created;
    control->Post([&] {
      resolver = naming::CreateResolver(*parsed, control,
                                        channel->options_.resolver);
      created.Notify();
    });
    created.WaitForNotification();
  }
  if (!resolver.ok()) return resolver.status();
  if (channel->options_.enable_metrics) {
    if (channel->options_.metrics_registry == nullptr) {
      return absl::InvalidArgumentError(
          "enable_metrics is on but metrics_registry is null");
    }
    auto metrics = internal::ClientMetrics::Create(
        channel->options_.metrics_registry, channel->target_);
    if (!metrics.ok()) return metrics.status();
    channel->metrics_ = *std::move(metrics);
  }
  channel->unsent_budget_ = std::make_unique<internal::ByteBudget>(
      channel->options_.max_unsent_request_bytes);
  channel->set_ = std::make_shared<internal::EndpointSet>(
      channel->target_, channel->loops_, &channel->options_,
      channel->unsent_budget_.get(), *policy, channel->metrics_);
  channel->set_->Start(*std::move(resolver));
  return channel;
}

Channel::~Channel() {
  // Fails open calls with CANCELLED (their callbacks may start follow-up
  // calls: those find the channel shut down and fail with CANCELLED too)
  // and closes every connection, each on its own loop. (No set: Create()
  // failed half-way.)
  if (set_ != nullptr) set_->Shutdown();
  if (owned_loops_ != nullptr) owned_loops_->Stop();
}

CallHandle Channel::CallAsync(absl::string_view method,
                              const google::protobuf::Message& request,
                              google::protobuf::Message* response,
                              const CallOptions& options,
                              absl::AnyInvocable<void(absl::Status)> done,
                              Metadata* trailers, Metadata* headers) {
  if (options.parent != nullptr) {
    // Inherits an incoming call's deadline and cancellation; comes back
    // here without a parent (rpc/internal/propagation.h).
    return internal::CallWithParent(
        *this, set_->control_loop(), options_.limits.max_metadata_bytes,
        method, request, response, options, std::move(done), trailers,
        headers);
  }
  if (!options_.interceptors.empty()) {
    CallOptions own = options;
    absl::Status refused = internal::InterceptClientCall(
        options_.interceptors, target_, method, /*streaming=*/false,
        &own.metadata, own.timeout, &done);
    if (!refused.ok()) {
      // Like any call's callback: on a loop, never inline.
      set_->control_loop()->Post(
          [done = std::move(done), refused]() mutable { done(refused); });
      return CallHandle();
    }
    return CallAsyncIntercepted(method, request, response, own,
                                std::move(done), trailers, headers);
  }
  return CallAsyncIntercepted(method, request, response, options,
                              std::move(done), trailers, headers);
}

CallHandle Channel::CallAsyncIntercepted(
    absl::string_view method, const google::protobuf::Message& request,
    google::protobuf::Message* response, const CallOptions& options,
    absl::AnyInvocable<void(absl::Status)> done, Metadata* trailers,
    Metadata* headers) {
  const internal::CallPolicy* policy = policies_->Find(method);
  internal::CallMetrics* metrics =
      metrics_ != nullptr ? metrics_->For(method) : nullptr;
  if (policy != nullptr && policy->hedge != nullptr) {
    return internal::HedgedCall::Start(this, set_, *policy->hedge,
                                       policies_->throttle(), method, request,
                                       response, options, policy,
                                       std::move(done), trailers, headers,
                                       metrics, metrics_);
  }
  return StartCall(method, &request, nullptr, response, options, policy,
                   /*retry=*/true, std::move(done), trailers, headers,
                   nullptr, metrics);
}

CallHandle Channel::StartCall(
    absl::string_view method, const google::protobuf::Message* request,
    const std::string* request_bytes, google::protobuf::Message* response,
    const CallOptions& options, const internal::CallPolicy* policy,
    bool retry, absl::AnyInvocable<void(absl::Status)>&& done,
    Metadata* trailers, Metadata* headers,
    const std::vector<const balancing::EndpointHealth*>* avoid,
    internal::CallMetrics* metrics) {
  absl::Status pick_error;
  const uint64_t hash = set_->KeyHash(options);
  std::shared_ptr<internal::ClientSlot> keep;  // Off the loops only.
  internal::ClientSlot* slot;
  if (avoid != nullptr && !avoid->empty()) {
    keep = set_->PickExcept(hash, *avoid, &pick_error);
    slot = keep.get();
  } else {
    slot = set_->PickFast(hash, options.wait_for_ready, &pick_error, &keep);
  }
  const bool on_loop = slot != nullptr && slot->loop()->IsInLoopThread();
  std::unique_ptr<internal::ClientCall> call =
      on_loop ? slot->NewCall() : std::make_unique<internal::ClientCall>();
  call->id = slot != nullptr ? slot->NextCallId() : 0;
  call->method.assign(method.data(), method.size());
  call->response = response;
  call->trailers = trailers;
  call->response_headers = headers;
  call->headers = options.metadata;
  // Trace context (rpc/internal/call_trace.h): kept if a parent or the
  // caller set it, else a new trace.
  internal::EnsureTraceparent(&call->headers, options.trace,
                              options_.limits.max_metadata_bytes);
  call->timeout = options.timeout;
  if (policy != nullptr) {
    call->timeout = std::min(call->timeout, policy->timeout);
    if (retry && policy->retry != nullptr) {
      call->retry = policy->retry;
      internal::RetryThrottle* throttle = policies_->throttle();
      call->throttle = throttle->enabled() ? throttle : nullptr;
    }
  }
  if (call->timeout != absl::InfiniteDuration()) {
    call->deadline = absl::Now() + call->timeout;
  }
  call->done = std::move(done);
  call->hash = hash;
  if (metrics != nullptr) {
    call->metrics = metrics;
    call->metrics_start = internal::LatencyClock::Now();
    metrics->Started();
  }
  CallHandle handle;
  if (slot != nullptr) handle.slot = slot->weak_from_this();
  handle.call_id = call->id;

  size_t size =
      request != nullptr ? request->ByteSizeLong() : request_bytes->size();
  absl::Status invalid;
  if (size > options_.limits.max_message_bytes) {
    invalid = absl::ResourceExhaustedError(
        absl::StrCat("request payload of ", size,
                     " bytes exceeds max_message_bytes ",
                     options_.limits.max_message_bytes));
  } else if (method.size() > options_.limits.max_method_bytes) {
    invalid = absl::InvalidArgumentError(
        absl::StrCat("method name of ", method.size(),
                     " bytes exceeds max_method_bytes ",
                     options_.limits.max_method_bytes));
  } else if (!options.metadata.empty()) {
    // Never sent over the limit: the server would refuse it.
    invalid = internal::CheckMetadata(
        options.metadata, options_.limits.max_metadata_bytes,
        "request headers", absl::StatusCode::kInvalidArgument);
  }
  if (invalid.ok()) {
    if (request != nullptr) {
      request->SerializeToString(&call->request);  // Reuses its capacity.
    } else {
      call->request = *request_bytes;
    }
    if (metrics != nullptr) metrics->AddSentBytes(call->request.size());
  }
  // From the slot's own loop thread (e.g. a completion callback issuing the
  // next call) the request goes out in this very turn, batched with the
  // others written during the same read callback.
  if (invalid.ok() && on_loop && slot->TryStartInline(call)) {
    return handle;
  }
  if (slot != nullptr) {
    slot->PostStart(std::move(call), std::move(invalid));
    return handle;
  }
  if (!invalid.ok() || !pick_error.ok()) {
    // No endpoint to fail it on: the control loop runs the callback.
    // Recorded now: the closure may run after the channel (and its
    // metrics) are gone.
    call->RecordEnd(invalid.ok() ? pick_error.code() : invalid.code());
    set_->control_loop()->Post(
        [call = std::move(call),
         why = invalid.ok() ? std::move(pick_error) : std::move(invalid)]() mutable {
          call->done(std::move(why));
        });
    return handle;
  }
  // No endpoint list yet (or wait_for_ready on an empty one): it waits.
  handle.ticket = set_->Park(std::move(call), options.wait_for_ready, hash);
  return handle;
}

void Channel::Cancel(const CallHandle& call) {
  if (call.hedged != nullptr) {
    call.hedged->Cancel();
    return;
  }
  set_->Cancel(call);
}

absl::Status Channel::Call(absl::string_view method,
                           const google::protobuf::Message& request,
                           google::protobuf::Message* response,
                           const CallOptions& options, Metadata* trailers,
                           Metadata* headers) {
  for (transport::EventLoop* loop : loops_) {
    if (loop->IsInLoopThread()) {
      return absl::FailedPreconditionError(
          "blocking Channel::Call() on the channel's own I/O thread would "
          "deadlock; use CallAsync()");
    }
  }
  Notification finished;
  absl::Status result;
  CallAsync(method, request, response, options,
            [&](absl::Status s) {
              result = std::move(s);
              finished.Notify();
            },
            trailers, headers);
  finished.WaitForNotification();
  return result;
}

std::vector<ChannelEndpoint> Channel::endpoints() const {
  std::vector<ChannelEndpoint> out;
  for (const internal::EndpointSet::EndpointStatus& e : set_->Endpoints()) {
    ChannelEndpoint c;
    c.address = e.info.address;
    c.state = std::string(balancing::EndpointStateName(e.state));
    c.weight = e.info.weight;
    c.zone = e.info.zone;
    c.id = e.info.id;
    c.version = e.info.version;
    c.calls_started = e.calls_started;
    c.ejections = static_cast<uint32_t>(e.ejections);
    c.ejection_left = e.ejection_left;
    out.push_back(std::move(c));
  }
  return out;
}

absl::Status Channel::WaitForEndpoints(absl::Duration timeout) const {
  for (transport::EventLoop* loop : loops_) {
    if (loop->IsInLoopThread()) {
      return absl::FailedPreconditionError(
          "WaitForEndpoints() on the channel's own I/O thread would deadlock");
    }
  }
  return set_->WaitResolved(timeout);
}

int64_t Channel::retry_milli_tokens() const {
  return policies_->throttle()->milli_tokens();
}

size_t Channel::unsent_request_bytes() const {
  return unsent_budget_->used();
}

size_t Channel::peak_unsent_request_bytes() const {
  return unsent_budget_->peak();
}

}  // namespace bevrpc
