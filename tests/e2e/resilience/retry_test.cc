// Retries, hedging and the retry throttle, end to end: in-process replicas
// that fail, hang or answer as each test sets them, behind one channel.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/idempotency.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/service_config.h"
#include "rpc/wire_format.h"
#include "services/echo/echo.pb.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

// Not marked: may have side effects.
constexpr char kWrite[] = "test.Flaky/Write";
// Registered NO_SIDE_EFFECTS below: retried by default.
constexpr char kRead[] = "test.Flaky/Read";
// Sends a response header, then fails with UNAVAILABLE.
constexpr char kHeadersThenFail[] = "test.Flaky/HeadersThenFail";

// A replica whose behaviour the test sets: fail the next `fail_next` calls
// (or all, with `fail_always`) with `fail_code` and an optional pushback
// trailer, or leave calls unanswered (`hang`) until they are cancelled.
struct Replica {
  std::unique_ptr<Server> server;
  int index = 0;
  std::atomic<int> calls{0};
  std::atomic<int> fail_next{0};
  std::atomic<bool> fail_always{false};
  std::atomic<bool> hang{false};
  std::atomic<int> cancelled{0};
  std::atomic<int> last_previous_attempts{0};
  absl::StatusCode fail_code = absl::StatusCode::kUnavailable;
  std::string pushback;  // Trailer value; empty: none.

  std::string address() const {
    return absl::StrCat("127.0.0.1:", server->port());
  }

  void Handle(ServerContext& ctx, EchoResponse* resp, Completion done) {
    calls++;
    auto prev = ctx.metadata().find(wire::kPreviousAttemptsKey);
    last_previous_attempts =
        prev == ctx.metadata().end() ? 0 : std::stoi(prev->second);
    if (hang) {
      ctx.OnCancel([this] { cancelled++; });
      // Answered only if never cancelled (it is, well before).
      ctx.RunAfter(absl::Seconds(60), [d = std::move(done)]() mutable {
        std::move(d).Finish(absl::OkStatus());
      });
      return;
    }
    if (fail_always || fail_next.fetch_sub(1) > 0) {
      if (!pushback.empty()) {
        ctx.AddTrailer(wire::kRetryPushbackMsKey, pushback);
      }
      std::move(done).Finish(absl::Status(fail_code, "injected by the test"));
      return;
    }
    resp->set_message(absl::StrCat(index));
    std::move(done).Finish(absl::OkStatus());
  }
};

std::unique_ptr<Replica> StartReplica(int index) {
  auto r = std::make_unique<Replica>();
  r->index = index;
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  r->server = std::make_unique<Server>(options);
  Replica* raw = r.get();
  for (const char* name : {kWrite, kRead}) {
    EXPECT_TRUE(r->server
                    ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        name, [raw](ServerContext& ctx, const EchoRequest&,
                                    EchoResponse* resp, Completion done) {
                          raw->Handle(ctx, resp, std::move(done));
                        }))
                    .ok());
  }
  EXPECT_TRUE(r->server
                  ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                      kHeadersThenFail,
                      [raw](ServerContext& ctx, const EchoRequest&,
                            EchoResponse*, Completion done) {
                        raw->calls++;
                        ctx.AddHeader("x-seen", "1");
                        std::move(done).Finish(
                            absl::UnavailableError("after headers"));
                      }))
                  .ok());
  absl::Status started = r->server->Start();
  EXPECT_TRUE(started.ok()) << started;
  return r;
}

// Polls `done` (a counter the test cannot wait on) for up to 20 s.
void WaitUntil(const std::function<bool()>& done) {
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!done() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));  // No event to wait on.
  }
}

// One CallAsync() whose outcome the test waits for.
struct AsyncCall {
  EchoRequest req;
  EchoResponse resp;
  Notification finished;
  absl::StatusCode code = absl::StatusCode::kOk;
  CallHandle handle;

  void Start(Channel& channel, absl::string_view method) {
    handle = channel.CallAsync(method, req, &resp, {}, [this](absl::Status s) {
      code = s.code();
      finished.Notify();
    });
  }
};

class RetryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    RegisterIdempotency(kRead, Idempotency::kNoSideEffects);
  }
  void StartReplicas(int n) {
    for (int i = 0; i < n; ++i) replicas_.push_back(StartReplica(i));
  }
  std::unique_ptr<Channel> Open(ChannelOptions options = {}) {
    std::vector<std::string> parts;
    for (auto& r : replicas_) parts.push_back(r->address());
    auto channel =
        Channel::Create("list:///" + absl::StrJoin(parts, ","), options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *std::move(channel) : nullptr;
  }
  static ServiceConfig Config(absl::string_view json) {
    absl::StatusOr<ServiceConfig> config = ParseServiceConfig(json);
    EXPECT_TRUE(config.ok()) << config.status();
    return config.ok() ? *config : ServiceConfig{};
  }
  static absl::Status Call(Channel& channel, absl::string_view method,
                           CallOptions options = {},
                           Metadata* trailers = nullptr) {
    if (options.timeout == absl::InfiniteDuration()) {
      options.timeout = absl::Seconds(20);
    }
    EchoRequest req;
    EchoResponse resp;
    return channel.Call(method, req, &resp, options, trailers);
  }
  int TotalCalls() const {
    int n = 0;
    for (auto& r : replicas_) n += r->calls;
    return n;
  }

  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(RetryTest, AnIdempotentMethodIsRetriedOnAnotherEndpointByDefault) {
  StartReplicas(2);
  replicas_[0]->fail_always = true;
  auto channel = Open();
  ASSERT_NE(channel, nullptr);
  for (int i = 0; i < 20; ++i) {
    absl::Status s = Call(*channel, kRead);
    EXPECT_TRUE(s.ok()) << s;
  }
  // Every call answered by replica 1; replica 0 only ever saw first
  // attempts (a retry goes elsewhere while another endpoint is usable).
  EXPECT_EQ(replicas_[1]->calls, 20);
  EXPECT_GT(replicas_[0]->calls, 0);
  EXPECT_EQ(replicas_[0]->last_previous_attempts, 0);
}

TEST_F(RetryTest, AMethodWithSideEffectsRunsAtMostOnce) {
  StartReplicas(2);
  replicas_[0]->fail_always = true;
  auto channel = Open();
  ASSERT_NE(channel, nullptr);
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    absl::Status s = Call(*channel, kWrite);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
      ++failed;
    }
  }
  // Each failure reached a handler once and was not repeated anywhere.
  EXPECT_EQ(failed, replicas_[0]->calls);
  EXPECT_EQ(TotalCalls(), 20);
}

TEST_F(RetryTest, JsonRetryPolicyRetriesUpToMaxAttempts) {
  StartReplicas(1);
  replicas_[0]->fail_next = 3;
  ChannelOptions options;
  options.service_config = Config(R"({"methodConfig": [{
      "name": [{"service": "test.Flaky", "method": "Write"}],
      "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s",
                      "maxBackoff": "0.05s", "backoffMultiplier": 2,
                      "retryableStatusCodes": ["UNAVAILABLE"]}}]})");
  auto channel = Open(options);
  ASSERT_NE(channel, nullptr);
  absl::Status s = Call(*channel, kWrite);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(replicas_[0]->calls, 4);
  EXPECT_EQ(replicas_[0]->last_previous_attempts, 3);

  // One more failure than attempts: the last answer is the call's.
  replicas_[0]->calls = 0;
  replicas_[0]->fail_next = 5;
  s = Call(*channel, kWrite);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(replicas_[0]->calls, 4);
}

TEST_F(RetryTest, OnlyRetryableCodesAreRetried) {
  StartReplicas(1);
  replicas_[0]->fail_always = true;
  replicas_[0]->fail_code = absl::StatusCode::kInternal;
  auto channel = Open();
  ASSERT_NE(channel, nullptr);
  absl::Status s = Call(*channel, kRead);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(replicas_[0]->calls, 1);
}

TEST_F(RetryTest, ACallIsCommittedOnceResponseHeadersArrive) {
  StartReplicas(1);
  RegisterIdempotency(kHeadersThenFail, Idempotency::kIdempotent);
  auto channel = Open();
  ASSERT_NE(channel, nullptr);
  absl::Status s = Call(*channel, kHeadersThenFail);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(replicas_[0]->calls, 1);
}

TEST_F(RetryTest, ServerPushbackIsObeyed) {
  StartReplicas(1);
  auto channel = Open();
  ASSERT_NE(channel, nullptr);
  // Negative: do not retry.
  replicas_[0]->fail_next = 1;
  replicas_[0]->pushback = "-1";
  absl::Status s = Call(*channel, kRead);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(replicas_[0]->calls, 1);
  // A delay: the retry waits at least that long.
  replicas_[0]->calls = 0;
  replicas_[0]->fail_next = 1;
  replicas_[0]->pushback = "200";
  absl::Time start = absl::Now();
  s = Call(*channel, kRead);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_EQ(replicas_[0]->calls, 2);
}

TEST_F(RetryTest, NoRetryPastTheDeadline) {
  StartReplicas(1);
  replicas_[0]->fail_next = 1;
  replicas_[0]->pushback = "5000";
  auto channel = Open();
  ASSERT_NE(channel, nullptr);
  CallOptions options;
  options.timeout = absl::Seconds(2);
  absl::Status s = Call(*channel, kRead, options);
  // The server's answer, at once: waiting 5 s would pass the deadline.
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(replicas_[0]->calls, 1);
}

TEST_F(RetryTest, CancelReachesACallWaitingForItsRetry) {
  StartReplicas(1);
  replicas_[0]->fail_next = 1;
  replicas_[0]->pushback = "60000";
  auto channel = Open();
  ASSERT_NE(channel, nullptr);
  const int64_t full = channel->retry_milli_tokens();
  AsyncCall call;
  call.Start(*channel, kRead);
  // The failed attempt took a token: the call now waits out its pushback.
  WaitUntil([&] { return channel->retry_milli_tokens() < full; });
  ASSERT_LT(channel->retry_milli_tokens(), full);
  channel->Cancel(call.handle);
  ASSERT_TRUE(call.finished.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(call.code, absl::StatusCode::kCancelled);
  EXPECT_EQ(replicas_[0]->calls, 1);
}

TEST_F(RetryTest, ThrottlingCapsAttemptsWhenEveryReplicaFails) {
  StartReplicas(2);
  for (auto& r : replicas_) r->fail_always = true;
  ChannelOptions options;
  options.service_config = Config(R"({
      "methodConfig": [{"name": [{"service": "test.Flaky"}],
        "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.001s",
                        "maxBackoff": "0.002s", "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"]}}],
      "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}})");
  auto channel = Open(options);
  ASSERT_NE(channel, nullptr);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(Call(*channel, kWrite).code(), absl::StatusCode::kUnavailable);
  }
  // 10 tokens: the first call makes 5 attempts (tokens 10 -> 5), every
  // later one a single attempt (retries stop at max_tokens / 2). Without
  // the throttle: 250.
  EXPECT_EQ(TotalCalls(), 5 + 49);
}

TEST_F(RetryTest, HedgingAnswersDespiteABlackHole) {
  StartReplicas(2);
  replicas_[0]->hang = true;
  ChannelOptions options;
  options.service_config = Config(R"({"methodConfig": [{
      "name": [{"service": "test.Flaky", "method": "Read"}],
      "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "0.03s"}}]})");
  auto channel = Open(options);
  ASSERT_NE(channel, nullptr);
  for (int i = 0; i < 10; ++i) {
    EchoRequest req;
    EchoResponse resp;
    CallOptions call_options;
    call_options.timeout = absl::Seconds(20);
    absl::Status s = channel->Call(kRead, req, &resp, call_options);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(resp.message(), "1");
  }
  EXPECT_EQ(replicas_[1]->calls, 10);
  // Every attempt left hanging was cancelled once another answered.
  const int hung = replicas_[0]->calls;
  EXPECT_GT(hung, 0);
  WaitUntil([&] { return replicas_[0]->cancelled >= hung; });
  EXPECT_EQ(replicas_[0]->cancelled, hung);
}

TEST_F(RetryTest, CancellingAHedgedCallCancelsEveryAttempt) {
  StartReplicas(2);
  for (auto& r : replicas_) r->hang = true;
  ChannelOptions options;
  options.service_config = Config(R"({"methodConfig": [{
      "name": [{"service": "test.Flaky"}],
      "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "0s"}}]})");
  auto channel = Open(options);
  ASSERT_NE(channel, nullptr);
  AsyncCall call;
  call.Start(*channel, kWrite);
  WaitUntil([&] { return TotalCalls() >= 2; });
  ASSERT_EQ(TotalCalls(), 2);
  channel->Cancel(call.handle);
  ASSERT_TRUE(call.finished.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(call.code, absl::StatusCode::kCancelled);
  WaitUntil([&] {
    return replicas_[0]->cancelled + replicas_[1]->cancelled >= 2;
  });
  EXPECT_EQ(replicas_[0]->cancelled + replicas_[1]->cancelled, 2);
}

TEST_F(RetryTest, DestroyingTheChannelEndsHedgedAndBackingOffCalls) {
  StartReplicas(2);
  replicas_[0]->hang = true;
  replicas_[1]->fail_always = true;
  replicas_[1]->pushback = "60000";  // A retry would wait a minute.
  ChannelOptions options;
  options.service_config = Config(R"({"methodConfig": [
      {"name": [{"service": "test.Flaky", "method": "Write"}],
       "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.01s",
                         "nonFatalStatusCodes": ["UNAVAILABLE"]}}]})");
  auto channel = Open(options);
  ASSERT_NE(channel, nullptr);
  // An attempt on replica 1 fails (non-fatal), the next goes to 0 and
  // hangs: the call stays open.
  AsyncCall hedged;
  hedged.Start(*channel, kWrite);
  AsyncCall backing_off;
  backing_off.Start(*channel, kRead);  // Retried after 60 s, or on 0.
  WaitUntil([&] { return TotalCalls() >= 3; });
  channel.reset();
  ASSERT_TRUE(hedged.finished.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_TRUE(
      backing_off.finished.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(hedged.code, absl::StatusCode::kCancelled);
  EXPECT_EQ(backing_off.code, absl::StatusCode::kCancelled);
}

TEST_F(RetryTest, ServiceConfigTimeoutBoundsCalls) {
  StartReplicas(1);
  replicas_[0]->hang = true;
  ChannelOptions options;
  options.service_config = Config(R"({"methodConfig": [{
      "name": [{}], "timeout": "0.2s"}]})");
  auto channel = Open(options);
  ASSERT_NE(channel, nullptr);
  EXPECT_EQ(Call(*channel, kWrite).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(RetryTest, BadServiceConfigsAreClearErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"methodConfig": [{"nme": []}]})", "does not parse"},
      {R"({"methodConfig": [{"name": [{"service": "a"}], "retryPolicy":
          {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
           "backoffMultiplier": 2, "retryableStatusCodes": ["NOPE"]}}]})",
       "NOPE"},
      {R"({"methodConfig": [{"name": [{"service": "a"}],
          "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s",
            "maxBackoff": "1s", "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"]},
          "hedgingPolicy": {"maxAttempts": 2}}]})",
       "mutually exclusive"},
      {R"({"methodConfig": [{"name": [{"service": "a"}]},
                             {"name": [{"service": "a"}]}]})",
       "more than one"},
      {R"({"methodConfig": [{"name": [{"method": "M"}]}]})",
       "needs a service"},
      {R"({"methodConfig": [{"name": [{"service": "a"}],
          "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0s",
            "maxBackoff": "1s", "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"]}}]})",
       "initialBackoff"},
  };
  for (const auto& [json, want] : cases) {
    absl::StatusOr<ServiceConfig> config = ParseServiceConfig(json);
    ASSERT_FALSE(config.ok()) << json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(want), std::string::npos)
        << config.status();
  }
  // Built in code: Channel::Create() checks the same.
  MethodConfig both;
  both.names = {"a"};
  both.retry = RetryPolicy();
  both.retry->max_attempts = 3;
  both.hedging = HedgingPolicy();
  ChannelOptions options;
  options.service_config.methods.push_back(both);
  EXPECT_EQ(Channel::Create("127.0.0.1:1", options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bevrpc
