// Overload protection and fault injection through the real Server and
// Channel, in one process over loopback TCP: ServerOptions::
// max_concurrent_calls (server-wide and per method) refuses the excess at
// once with RESOURCE_EXHAUSTED and the bevrpc-retry-pushback-ms trailer,
// before any handler sees it, and every way a call ends gives its slot
// back; fault_injection aborts and delays calls before dispatch.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/wire.pb.h"
#include "rpc/wire_format.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/testing/raw_client.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

constexpr char kEcho[] = "bevrpc.echo.Echo/Echo";
constexpr char kBlock[] = "test.Gate/Block";
constexpr char kStream[] = "test.Gate/Stream";
constexpr char kCount[] = "test.Gate/Count";
constexpr absl::Duration kWait = absl::Seconds(30);

// Handlers that hold their calls until the test opens the gate, and count
// what they see. test.Gate/Block (unary) and test.Gate/Stream (server
// streaming) keep their Completion until Release(); a cancelled call's
// completion is dropped at once (from its OnCancel, on the I/O loop).
// test.Gate/Count answers at once.
class Gate {
 public:
  void Hold(ServerContext& ctx, Completion done) {
    auto held = std::make_shared<Completion>(std::move(done));
    {
      MutexLock lock(&mu_);
      held_.push_back(held);
      ++started_;
      cv_.SignalAll();
    }
    ctx.OnCancel([this, held] {
      MutexLock lock(&mu_);
      std::move(*held).Finish(absl::CancelledError("cancelled"));
      ++cancelled_;
      cv_.SignalAll();
    });
  }

  // Finishes every held call with OK.
  void Release() {
    MutexLock lock(&mu_);
    for (auto& held : held_) std::move(*held).Finish(absl::OkStatus());
    held_.clear();
  }

  bool WaitStarted(int n) {
    MutexLock lock(&mu_);
    return cv_.WaitUntil(&mu_, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return started_ >= n;
    });
  }
  bool WaitCancelled(int n) {
    MutexLock lock(&mu_);
    return cv_.WaitUntil(&mu_, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return cancelled_ >= n;
    });
  }
  int started() {
    MutexLock lock(&mu_);
    return started_;
  }

  std::atomic<int> counted{0};  // test.Gate/Count's handler runs.

 private:
  Mutex mu_;
  CondVar cv_;
  std::vector<std::shared_ptr<Completion>> held_ ABSL_GUARDED_BY(mu_);
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  int cancelled_ ABSL_GUARDED_BY(mu_) = 0;
};

// One async call's outcome, safe to wait on from the test thread.
struct AsyncCall {
  EchoResponse response;
  Metadata trailers;
  Notification done;
  Mutex mu;
  absl::StatusCode code ABSL_GUARDED_BY(mu) = absl::StatusCode::kUnknown;
  CallHandle handle;

  absl::StatusCode Code() {
    MutexLock lock(&mu);
    return code;
  }
};

class OverloadTest : public ::testing::Test {
 protected:
  absl::Status StartServer(ServerOptions options) {
    server_ = std::make_unique<Server>(std::move(options));
    absl::Status s = echo::RegisterEchoService(*server_);
    if (!s.ok()) return s;
    Gate* gate = &gate_;
    s = server_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
        kBlock, [gate](ServerContext& ctx, const EchoRequest&, EchoResponse*,
                       Completion done) { gate->Hold(ctx, std::move(done)); }));
    if (!s.ok()) return s;
    s = server_->RegisterMethod(
        ServerStreamingCallbackMethod<EchoRequest, EchoResponse>(
            kStream, [gate](ServerContext& ctx, const EchoRequest&,
                            ServerWriter<EchoResponse>, Completion done) {
              gate->Hold(ctx, std::move(done));
            }));
    if (!s.ok()) return s;
    s = server_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
        kCount, [gate](ServerContext&, const EchoRequest& req,
                       EchoResponse* resp, Completion done) {
          gate->counted++;
          resp->set_message(req.message());
          std::move(done).Finish(absl::OkStatus());
        }));
    if (!s.ok()) return s;
    s = server_->Start();
    if (!s.ok()) return s;
    auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server_->port()));
    if (!channel.ok()) return channel.status();
    channel_ = *std::move(channel);
    return absl::OkStatus();
  }

  // Calls still open fail as the channel goes, before calls_ does.
  void TearDown() override {
    gate_.Release();
    channel_.reset();
    server_.reset();
    calls_.clear();
  }

  // Starts a call on channel_; the test fixture owns it.
  AsyncCall* StartCall(const char* method, CallOptions options = {}) {
    calls_.push_back(std::make_unique<AsyncCall>());
    AsyncCall* call = calls_.back().get();
    AsyncCall* raw = call;
    call->handle = channel_->CallAsync(
        method, EchoRequest(), &call->response, options,
        [raw](absl::Status s) {
          {
            MutexLock lock(&raw->mu);
            raw->code = s.code();
          }
          raw->done.Notify();
        },
        &call->trailers);
    return call;
  }

  Gate gate_;
  std::vector<std::unique_ptr<AsyncCall>> calls_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

ServerOptions WithLimit(int n) {
  ServerOptions options;
  options.max_concurrent_calls = n;
  return options;
}

TEST_F(OverloadTest, CallOverTheLimitIsRefusedAtOnceWithPushback) {
  ASSERT_TRUE(StartServer(WithLimit(3)).ok());
  std::vector<AsyncCall*> blocked;
  for (int i = 0; i < 3; ++i) blocked.push_back(StartCall(kBlock));
  ASSERT_TRUE(gate_.WaitStarted(3));
  EXPECT_EQ(server_->calls_in_flight(), 3u);

  EchoResponse resp;
  Metadata trailers;
  absl::Status s = channel_->Call(kBlock, EchoRequest(), &resp, {}, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(s.message(),
            "server overloaded: 3 calls in flight, the limit "
            "max_concurrent_calls (retry on another server)");
  EXPECT_EQ(trailers, (Metadata{{wire::kRetryPushbackMsKey, "0"}}));
  // Answered while the three were still held, and never handled.
  for (auto& call : blocked) EXPECT_FALSE(call->done.HasBeenNotified());
  EXPECT_EQ(gate_.started(), 3);
  EXPECT_EQ(server_->calls_in_flight(), 3u);

  gate_.Release();
  for (auto& call : blocked) {
    ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
    EXPECT_EQ(call->Code(), absl::StatusCode::kOk);
  }
  // A slot is free before its client sees the answer.
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  std::vector<AsyncCall*> next;
  for (int i = 0; i < 3; ++i) next.push_back(StartCall(kBlock));
  ASSERT_TRUE(gate_.WaitStarted(6));
  gate_.Release();
  for (auto& call : next) {
    ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
    EXPECT_EQ(call->Code(), absl::StatusCode::kOk);
  }
  EXPECT_EQ(server_->calls_in_flight(), 0u);
}

TEST_F(OverloadTest, PushbackFollowsTheOption) {
  ServerOptions options = WithLimit(1);
  options.overload_retry_pushback = -absl::Seconds(1);
  ASSERT_TRUE(StartServer(options).ok());
  StartCall(kBlock);
  ASSERT_TRUE(gate_.WaitStarted(1));
  EchoResponse resp;
  Metadata trailers;
  absl::Status s = channel_->Call(kEcho, EchoRequest(), &resp, {}, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(trailers[wire::kRetryPushbackMsKey], "-1");
}

TEST_F(OverloadTest, PerMethodLimitAffectsOnlyThatMethod) {
  ServerOptions options;
  options.max_concurrent_calls_per_method[kBlock] = 1;
  ASSERT_TRUE(StartServer(options).ok());
  auto blocked = StartCall(kBlock);
  ASSERT_TRUE(gate_.WaitStarted(1));

  EchoResponse resp;
  Metadata trailers;
  absl::Status s = channel_->Call(kBlock, EchoRequest(), &resp, {}, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(s.message(),
            "method test.Gate/Block overloaded: 1 calls in flight, the limit "
            "max_concurrent_calls_per_method[\"test.Gate/Block\"] (retry on "
            "another server)");
  EXPECT_EQ(trailers[wire::kRetryPushbackMsKey], "0");
  EXPECT_EQ(gate_.started(), 1);

  // Other methods are not limited.
  EchoRequest req;
  req.set_message("free");
  ASSERT_TRUE(channel_->Call(kEcho, req, &resp).ok());
  EXPECT_EQ(resp.message(), "free");
  EXPECT_EQ(server_->calls_in_flight(), 1u);

  gate_.Release();
  ASSERT_TRUE(blocked->done.WaitForNotificationWithTimeout(kWait));
  auto again = StartCall(kBlock);
  ASSERT_TRUE(gate_.WaitStarted(2));
  gate_.Release();
  ASSERT_TRUE(again->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(again->Code(), absl::StatusCode::kOk);
}

TEST_F(OverloadTest, StreamsCountAndAreRefusedToo) {
  ASSERT_TRUE(StartServer(WithLimit(1)).ok());
  EchoRequest req;
  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, kStream, MethodKind::kServerStreaming, &req);
  ASSERT_TRUE(gate_.WaitStarted(1));
  EXPECT_EQ(server_->calls_in_flight(), 1u);

  // A unary call, and a second stream, find the only slot taken.
  EchoResponse resp;
  Metadata trailers;
  absl::Status s = channel_->Call(kCount, EchoRequest(), &resp, {}, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(trailers[wire::kRetryPushbackMsKey], "0");
  auto refused = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, kStream, MethodKind::kServerStreaming, &req);
  EXPECT_EQ(refused->Finish().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(gate_.started(), 1);
  EXPECT_EQ(gate_.counted.load(), 0);

  gate_.Release();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  ASSERT_TRUE(channel_->Call(kCount, EchoRequest(), &resp).ok());
  EXPECT_EQ(gate_.counted.load(), 1);
}

TEST_F(OverloadTest, CancelledCallGivesItsSlotBack) {
  ASSERT_TRUE(StartServer(WithLimit(1)).ok());
  auto call = StartCall(kBlock);
  ASSERT_TRUE(gate_.WaitStarted(1));
  channel_->Cancel(call->handle);
  ASSERT_TRUE(call->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(call->Code(), absl::StatusCode::kCancelled);
  // The server's handler sees the cancel after the slot was given back.
  ASSERT_TRUE(gate_.WaitCancelled(1));
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  EchoResponse resp;
  EXPECT_TRUE(channel_->Call(kCount, EchoRequest(), &resp).ok());
}

TEST_F(OverloadTest, ExpiredCallGivesItsSlotBack) {
  ASSERT_TRUE(StartServer(WithLimit(1)).ok());
  CallOptions options;
  options.timeout = absl::Milliseconds(100);
  EchoResponse resp;
  EXPECT_EQ(channel_->Call(kBlock, EchoRequest(), &resp, options).code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(gate_.WaitCancelled(1));
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  EXPECT_TRUE(channel_->Call(kCount, EchoRequest(), &resp).ok());
}

// A client that vanishes (RST) takes its calls with it. (One that only
// shuts down its sending side still gets its answers: docs/protocol.md.)
TEST_F(OverloadTest, ResetConnectionGivesItsSlotsBack) {
  ASSERT_TRUE(StartServer(WithLimit(2)).ok());
  auto raw = testing::RawClient::Connect(server_->port());
  ASSERT_TRUE(raw.ok()) << raw.status();
  for (uint64_t id : {1, 2}) {
    wire::FrameMeta request;
    request.set_call_id(id);
    request.set_kind(wire::REQUEST);
    request.set_method(kBlock);
    ASSERT_TRUE((*raw)->Write(testing::EncodeFrame(request, "")).ok());
  }
  ASSERT_TRUE(gate_.WaitStarted(2));
  EXPECT_EQ(server_->calls_in_flight(), 2u);
  (*raw)->ResetAndClose();
  ASSERT_TRUE(gate_.WaitCancelled(2));
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  EchoResponse resp;
  EXPECT_TRUE(channel_->Call(kCount, EchoRequest(), &resp).ok());
}

TEST_F(OverloadTest, ShutdownGivesEverySlotBack) {
  ASSERT_TRUE(StartServer(WithLimit(2)).ok());
  AsyncCall* first = StartCall(kBlock);
  StartCall(kBlock);
  ASSERT_TRUE(gate_.WaitStarted(2));
  EXPECT_EQ(server_->calls_in_flight(), 2u);
  server_->Shutdown(absl::ZeroDuration());
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  ASSERT_TRUE(first->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(first->Code(), absl::StatusCode::kUnavailable);
}

TEST_F(OverloadTest, StartFailsForALimitOnAnUnknownMethod) {
  ServerOptions options;
  options.max_concurrent_calls_per_method["test.Gate/Nope"] = 1;
  absl::Status s = StartServer(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "test.Gate/Nope")) << s;
}

// Not a pass/fail bound (wall-clock upper bounds flake): the figure the
// issue asks for ("excess answered within 1 ms"), printed for the record.
TEST_F(OverloadTest, RefusalLatency) {
  ASSERT_TRUE(StartServer(WithLimit(1)).ok());
  StartCall(kBlock);
  ASSERT_TRUE(gate_.WaitStarted(1));
  constexpr int kCalls = 1000;
  std::vector<double> micros;
  micros.reserve(kCalls);
  EchoResponse resp;
  for (int i = 0; i < kCalls; ++i) {
    const absl::Time start = absl::Now();
    absl::Status s = channel_->Call(kBlock, EchoRequest(), &resp);
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
    ASSERT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  }
  EXPECT_EQ(gate_.started(), 1);
  std::sort(micros.begin(), micros.end());
  std::printf(
      "refusal latency over %d refused calls (client round trip, loopback): "
      "p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us\n",
      kCalls, micros[kCalls / 2], micros[kCalls * 9 / 10],
      micros[kCalls * 99 / 100], micros.back());
}

// Fault injection.

TEST_F(OverloadTest, AbortAllCallsOfAMethod) {
  ServerOptions options;
  options.fault_injection.aborts.push_back(
      {kCount, 100, absl::StatusCode::kUnavailable, "injected"});
  ASSERT_TRUE(StartServer(options).ok());
  EchoResponse resp;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(channel_->Call(kCount, EchoRequest(), &resp),
              absl::UnavailableError("injected"));
  }
  EXPECT_EQ(gate_.counted.load(), 0);
  // Other methods are untouched, and aborted calls took no slot.
  EXPECT_TRUE(channel_->Call(kEcho, EchoRequest(), &resp).ok());
  EXPECT_EQ(server_->calls_in_flight(), 0u);
}

TEST_F(OverloadTest, AbortRuleForEveryMethodNamesItself) {
  ServerOptions options;
  FaultAbort rule;  // "*", 100 %, UNAVAILABLE
  rule.code = absl::StatusCode::kAborted;
  options.fault_injection.aborts.push_back(rule);
  ASSERT_TRUE(StartServer(options).ok());
  EchoResponse resp;
  EXPECT_EQ(channel_->Call(kEcho, EchoRequest(), &resp),
            absl::AbortedError("fault injected: 100% of calls to * are "
                               "aborted"));
  EXPECT_EQ(channel_->Call(kCount, EchoRequest(), &resp).code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(gate_.counted.load(), 0);
}

TEST_F(OverloadTest, AbortHalfTheCalls) {
  ServerOptions options;
  options.fault_injection.aborts.push_back(
      {kCount, 50, absl::StatusCode::kUnavailable, ""});
  ASSERT_TRUE(StartServer(options).ok());
  constexpr int kCalls = 2000;
  int aborted = 0;
  EchoResponse resp;
  for (int i = 0; i < kCalls; ++i) {
    absl::Status s = channel_->Call(kCount, EchoRequest(), &resp);
    if (s.code() == absl::StatusCode::kUnavailable) {
      ++aborted;
    } else {
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  // Binomial(2000, 0.5): sigma 22, so [800, 1200] is 9 sigma wide.
  EXPECT_GE(aborted, 800);
  EXPECT_LE(aborted, 1200);
  EXPECT_EQ(gate_.counted.load(), kCalls - aborted);
}

TEST_F(OverloadTest, DelayedCallTakesAtLeastTheDelay) {
  ServerOptions options;
  options.fault_injection.delays.push_back(
      {kCount, 100, absl::Milliseconds(50)});
  ASSERT_TRUE(StartServer(options).ok());
  EchoRequest req;
  req.set_message("late");
  EchoResponse resp;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(channel_->Call(kCount, req, &resp).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_EQ(resp.message(), "late");
  EXPECT_EQ(gate_.counted.load(), 1);
}

TEST_F(OverloadTest, DelayDoesNotBlockTheLoopAndACancelledDelayedCallNeverRuns) {
  ServerOptions options;
  options.io_threads = 1;  // The delayed call and the others share a loop.
  options.fault_injection.delays.push_back({kCount, 100, absl::Minutes(10)});
  ASSERT_TRUE(StartServer(options).ok());
  auto delayed = StartCall(kCount);
  EchoRequest req;
  req.set_message("meanwhile");
  EchoResponse resp;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(channel_->Call(kEcho, req, &resp).ok());
    EXPECT_EQ(resp.message(), "meanwhile");
  }
  EXPECT_FALSE(delayed->done.HasBeenNotified());
  EXPECT_EQ(server_->calls_in_flight(), 1u);  // Delayed calls are admitted.
  channel_->Cancel(delayed->handle);
  ASSERT_TRUE(delayed->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(delayed->Code(), absl::StatusCode::kCancelled);
  // Frames of one connection are handled in order: once this answer is
  // back, the server has seen the CANCEL.
  ASSERT_TRUE(channel_->Call(kEcho, req, &resp).ok());
  EXPECT_EQ(server_->calls_in_flight(), 0u);
  EXPECT_EQ(gate_.counted.load(), 0);
}

TEST_F(OverloadTest, StartFailsForABadFaultRule) {
  ServerOptions options;
  options.fault_injection.aborts.push_back(
      {"test.Gate/Nope", 10, absl::StatusCode::kUnavailable, ""});
  absl::Status s = StartServer(options);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "test.Gate/Nope")) << s;

  ServerOptions percent;
  percent.fault_injection.delays.push_back({"*", 101, absl::Seconds(1)});
  s = StartServer(percent);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "101")) << s;
}

}  // namespace
}  // namespace bevrpc
