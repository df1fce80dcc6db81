#include "rpc/channel.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "transport/sync.h"
#include "rpc/internal/byte_budget.h"
#include "rpc/internal/client_slot.h"
#include "rpc/internal/metadata_limits.h"

namespace bevrpc {

absl::StatusOr<std::unique_ptr<Channel>> Channel::Create(
    absl::string_view address, ChannelOptions options) {
  if (options.num_connections < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_connections must be >= 1, got ", options.num_connections));
  }
  absl::Status limits_ok = ValidateFrameLimits(options.limits);
  if (!limits_ok.ok()) return limits_ok;
  absl::StatusOr<transport::SocketAddress> addr =
      transport::SocketAddress::Parse(address);
  if (!addr.ok()) return addr.status();
  std::unique_ptr<Channel> channel(new Channel());
  channel->target_ = std::string(address);
  channel->options_ = std::move(options);
  transport::LoopPool* loops = channel->options_.loops;
  if (loops == nullptr) {
    auto owned = transport::LoopPool::Start(channel->options_.io_threads,
                                            "bevrpc-client");
    if (!owned.ok()) return owned.status();
    channel->owned_loops_ = *std::move(owned);
    loops = channel->owned_loops_.get();
  }
  channel->unsent_budget_ = std::make_unique<internal::ByteBudget>(
      channel->options_.max_unsent_request_bytes);
  for (int i = 0; i < channel->options_.num_connections; ++i) {
    channel->slots_.push_back(std::make_shared<internal::ClientSlot>(
        loops->Next(), *addr, &channel->options_,
        channel->unsent_budget_.get()));
  }
  return channel;
}

Channel::~Channel() {
  // Each slot fails its calls (their callbacks may start follow-up calls:
  // those find the slot shut down and fail with CANCELLED) and closes its
  // connections, on its own loop.
  for (auto& slot : slots_) {
    Notification done;
    internal::ClientSlot* s = slot.get();
    s->loop()->Post([s, &done] {
      s->Shutdown();
      done.Notify();
    });
    done.WaitForNotification();
  }
  if (owned_loops_ != nullptr) owned_loops_->Stop();
}

CallHandle Channel::CallAsync(absl::string_view method,
                              const google::protobuf::Message& request,
                              google::protobuf::Message* response,
                              const CallOptions& options,
                              absl::AnyInvocable<void(absl::Status)> done,
                              Metadata* trailers, Metadata* headers) {
  uint32_t index = next_slot_.fetch_add(1, std::memory_order_relaxed) %
                   slots_.size();
  internal::ClientSlot* slot = slots_[index].get();
  bool on_loop = slot->loop()->IsInLoopThread();
  std::unique_ptr<internal::ClientCall> call =
      on_loop ? slot->NewCall() : std::make_unique<internal::ClientCall>();
  call->id = slot->NextCallId();
  call->method.assign(method.data(), method.size());
  call->response = response;
  call->trailers = trailers;
  call->response_headers = headers;
  call->headers = options.metadata;
  call->timeout = options.timeout;
  if (options.timeout != absl::InfiniteDuration()) {
    call->deadline = absl::Now() + options.timeout;
  }
  call->done = std::move(done);
  CallHandle handle{static_cast<int>(index), call->id};

  size_t size = request.ByteSizeLong();
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
    request.SerializeToString(&call->request);  // Reuses its capacity.
  }
  // From the slot's own loop thread (e.g. a completion callback issuing the
  // next call) the request goes out in this very turn, batched with the
  // others written during the same read callback.
  if (invalid.ok() && on_loop && slot->TryStartInline(call)) {
    return handle;
  }
  slot->PostStart(std::move(call), std::move(invalid));
  return handle;
}

void Channel::Cancel(const CallHandle& call) {
  if (call.slot < 0 || call.slot >= static_cast<int>(slots_.size())) return;
  uint64_t id = call.call_id;
  std::shared_ptr<internal::ClientSlot> slot = slots_[call.slot];
  slot->loop()->Post([slot, id] { slot->Cancel(id); });
}

absl::Status Channel::Call(absl::string_view method,
                           const google::protobuf::Message& request,
                           google::protobuf::Message* response,
                           const CallOptions& options, Metadata* trailers,
                           Metadata* headers) {
  for (auto& slot : slots_) {
    if (slot->loop()->IsInLoopThread()) {
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

size_t Channel::unsent_request_bytes() const {
  return unsent_budget_->used();
}

size_t Channel::peak_unsent_request_bytes() const {
  return unsent_budget_->peak();
}

}  // namespace bevrpc
