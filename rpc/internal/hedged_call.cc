#include "rpc/internal/hedged_call.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/internal/call_trace.h"
#include "rpc/internal/client_slot.h"
#include "rpc/internal/endpoint_set.h"
#include "rpc/wire_format.h"

namespace bevrpc::internal {

HedgedCall::HedgedCall(Channel* channel, std::shared_ptr<EndpointSet> set,
                       const HedgeRule& rule, RetryThrottle* throttle)
    : channel_(channel),
      set_(std::move(set)),
      loop_(set_->control_loop()),
      rule_(rule),
      throttle_(throttle != nullptr && throttle->enabled() ? throttle
                                                            : nullptr) {}

CallHandle HedgedCall::Start(Channel* channel, std::shared_ptr<EndpointSet> set,
                             const HedgeRule& rule, RetryThrottle* throttle,
                             absl::string_view method,
                             const google::protobuf::Message& request,
                             google::protobuf::Message* response,
                             const CallOptions& options,
                             const CallPolicy* policy,
                             absl::AnyInvocable<void(absl::Status)> done,
                             Metadata* trailers, Metadata* headers,
                             CallMetrics* metrics,
                             std::shared_ptr<ClientMetrics> metrics_owner) {
  auto call = std::make_shared<HedgedCall>(channel, std::move(set), rule,
                                           throttle);
  call->method_ = std::string(method);
  request.SerializeToString(&call->request_);
  call->options_ = options;
  // One trace for every attempt: each is the same call to its callee.
  EnsureTraceparent(&call->options_.metadata, options.trace,
                    channel->options_.limits.max_metadata_bytes);
  call->policy_ = policy;
  const absl::Duration timeout = std::min(options.timeout, policy->timeout);
  if (timeout != absl::InfiniteDuration()) {
    call->deadline_ = absl::Now() + timeout;
  }
  call->response_ = response;
  call->trailers_ = trailers;
  call->headers_ = headers;
  call->done_ = std::move(done);
  if (metrics != nullptr) {
    call->metrics_ = metrics;
    call->metrics_owner_ = std::move(metrics_owner);
    call->metrics_start_ = MonotonicNow();
    metrics->Started();
    metrics->AddSentBytes(call->request_.size());
  }
  call->loop_->Post([call] { call->Launch(); });
  CallHandle handle;
  handle.hedged = call;
  return handle;
}

void HedgedCall::Cancel() {
  loop_->Post([self = shared_from_this()] {
    if (self->finished_) return;
    self->Finish(absl::CancelledError(absl::StrCat(
                     self->method_, " cancelled by the client")),
                 nullptr);
  });
}

void HedgedCall::Launch() {
  if (set_->shut_down_on_control_loop()) {
    Finish(absl::CancelledError("channel destroyed with the call open"),
           nullptr);
    return;
  }
  StartAttempt();
}

bool HedgedCall::MayStartAnother() const {
  return !finished_ &&
         static_cast<int>(attempts_.size()) < rule_.max_attempts &&
         (throttle_ == nullptr || throttle_->Allows()) &&
         absl::Now() < deadline_ && !set_->shut_down_on_control_loop();
}

void HedgedCall::StartAttempt() {
  const size_t index = attempts_.size();
  attempts_.push_back(std::make_unique<Attempt>());
  Attempt* attempt = attempts_.back().get();
  attempt->response.reset(response_->New());
  std::vector<const balancing::EndpointHealth*> avoid;
  for (const auto& a : attempts_) {
    if (a->endpoint != nullptr) avoid.push_back(a->endpoint);
  }
  CallOptions options = options_;
  options.timeout = deadline_ == absl::InfiniteFuture()
                        ? absl::InfiniteDuration()
                        : std::max(absl::ZeroDuration(), deadline_ - absl::Now());
  if (index > 0) {
    options.metadata[std::string(wire::kPreviousAttemptsKey)] =
        absl::StrCat(index);
    if (metrics_ != nullptr) metrics_->Hedged();
  }
  ++open_;
  attempt->handle = channel_->StartCall(
      method_, nullptr, &request_, attempt->response.get(), options, policy_,
      /*retry=*/false,
      [self = shared_from_this(), index](absl::Status s) mutable {
        self->loop_->Post([self, index, s = std::move(s)]() mutable {
          self->OnAttemptDone(index, std::move(s));
        });
      },
      &attempt->trailers, &attempt->headers, &avoid, /*metrics=*/nullptr);
  if (std::shared_ptr<ClientSlot> slot = attempt->handle.slot.lock()) {
    attempt->endpoint = slot->health();
  }
  ArmTimer();
}

void HedgedCall::ArmTimer() {
  if (!MayStartAnother()) return;
  if (timer_ == nullptr) timer_ = std::make_unique<transport::Timer>(loop_);
  std::weak_ptr<HedgedCall> weak = weak_from_this();
  timer_->Start(rule_.delay, [weak] {
    std::shared_ptr<HedgedCall> self = weak.lock();
    if (self != nullptr && self->MayStartAnother()) self->StartAttempt();
  });
}

void HedgedCall::OnAttemptDone(size_t index, absl::Status status) {
  Attempt* attempt = attempts_[index].get();
  attempt->over = true;
  --open_;
  if (finished_) return;
  if (status.ok()) {
    if (throttle_ != nullptr) throttle_->OnSuccess();
    Finish(std::move(status), attempt);
    return;
  }
  if ((rule_.non_fatal & CodeBit(status.code())) == 0) {
    Finish(std::move(status), attempt);
    return;
  }
  // Non-fatal: counts against the throttle; the next attempt goes now.
  if (throttle_ != nullptr) throttle_->OnFailure();
  last_failure_ = std::move(status);
  last_failed_ = index;
  if (MayStartAnother()) {
    StartAttempt();
  } else if (open_ == 0) {
    Finish(std::move(last_failure_), attempts_[last_failed_].get());
  }
}

void HedgedCall::Finish(absl::Status status, Attempt* from) {
  finished_ = true;
  timer_.reset();
  for (const auto& a : attempts_) {
    if (!a->over && a.get() != from) set_->Cancel(a->handle);
  }
  if (from != nullptr) {
    if (status.ok()) response_->GetReflection()->Swap(response_, from->response.get());
    if (trailers_ != nullptr) trailers_->merge(from->trailers);
    if (headers_ != nullptr) headers_->merge(from->headers);
  }
  if (metrics_ != nullptr) {
    if (status.ok()) metrics_->AddReceivedBytes(response_->ByteSizeLong());
    metrics_->Ended(status.code(), MonotonicNow() - metrics_start_);
    metrics_ = nullptr;
  }
  std::move(done_)(std::move(status));
}

}  // namespace bevrpc::internal
