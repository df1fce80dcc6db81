// HedgedCall: one unary call under a hedging policy (HedgingPolicy; brpc's
// backup request). The first attempt goes out at once; while none has
// answered, another goes to a different endpoint every hedging_delay, up
// to max_attempts. The first OK or fatal answer is the call's (its
// response, trailers and headers are handed to the caller's); the other
// attempts are cancelled. A non-fatal failure starts the next attempt at
// once. Internal to rpc/.
//
// Threading: Start() and Cancel() from any thread; everything else runs on
// the channel's control loop (attempts' completions are posted there).
// Kept alive by its pending attempts, its timer's closure and CallHandles.
#ifndef BEVRPC_RPC_INTERNAL_HEDGED_CALL_H_
#define BEVRPC_RPC_INTERNAL_HEDGED_CALL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/internal/call_policy.h"
#include "transport/event_loop.h"

namespace bevrpc::internal {

class CallMetrics;
class ClientMetrics;
class EndpointSet;

class HedgedCall : public std::enable_shared_from_this<HedgedCall> {
 public:
  // Serializes `request` now; the rest as Channel::CallAsync().
  static CallHandle Start(Channel* channel, std::shared_ptr<EndpointSet> set,
                          const HedgeRule& rule, RetryThrottle* throttle,
                          absl::string_view method,
                          const google::protobuf::Message& request,
                          google::protobuf::Message* response,
                          const CallOptions& options, const CallPolicy* policy,
                          absl::AnyInvocable<void(absl::Status)> done,
                          Metadata* trailers, Metadata* headers,
                          CallMetrics* metrics = nullptr,
                          std::shared_ptr<ClientMetrics> metrics_owner =
                              nullptr);

  // Ends the call with CANCELLED and cancels its attempts. Any thread.
  void Cancel();

  HedgedCall(Channel* channel, std::shared_ptr<EndpointSet> set,
             const HedgeRule& rule, RetryThrottle* throttle);

 private:
  struct Attempt {
    CallHandle handle;
    std::unique_ptr<google::protobuf::Message> response;
    Metadata trailers;
    Metadata headers;
    const balancing::EndpointHealth* endpoint = nullptr;
    bool over = false;
  };

  void Launch();
  void StartAttempt();
  void ArmTimer();
  void OnAttemptDone(size_t index, absl::Status status);
  // Ends the call with `status`; `from` (may be null) supplies the
  // response, trailers and headers.
  void Finish(absl::Status status, Attempt* from);
  bool MayStartAnother() const;

  Channel* const channel_;
  const std::shared_ptr<EndpointSet> set_;
  transport::EventLoop* const loop_;
  const HedgeRule& rule_;
  RetryThrottle* const throttle_;  // Null: no throttling.

  std::string method_;
  std::string request_;
  CallOptions options_;  // timeout unused: deadline_ rules.
  const CallPolicy* policy_ = nullptr;
  absl::Time deadline_ = absl::InfiniteFuture();
  google::protobuf::Message* response_ = nullptr;
  Metadata* trailers_ = nullptr;
  Metadata* headers_ = nullptr;
  absl::AnyInvocable<void(absl::Status)> done_;
  // The method's metrics (null: off): the call counts once, its hedged
  // attempts after the first as hedges. The owner keeps them alive.
  CallMetrics* metrics_ = nullptr;
  std::shared_ptr<ClientMetrics> metrics_owner_;
  absl::Duration metrics_start_;

  // Control loop only.
  std::vector<std::unique_ptr<Attempt>> attempts_;
  int open_ = 0;
  bool finished_ = false;
  absl::Status last_failure_;
  size_t last_failed_ = 0;
  std::unique_ptr<transport::Timer> timer_;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_HEDGED_CALL_H_
