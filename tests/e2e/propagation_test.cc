// Deadlines and cancellation across hops, end to end in one process over
// loopback: client -> server A -> server B, where A's handlers call B with
// CallOptions::From(ctx) (rpc/call_options.h). The test service is here:
// "test.B/*" on B and "test.A/*" on A.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/internal/cancellation.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/server_stream.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.pb.h"
#include "tests/testing/raw_client.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;
using Stream = ClientStream<EchoRequest, EchoResponse>;

constexpr absl::Duration kWait = absl::Seconds(30);  // Hang guard only.

// What server B's handlers saw.
struct Downstream {
  std::atomic<int> calls{0};
  Notification started;    // test.B/Hang or test.B/Chat began.
  Notification cancelled;  // ...and saw its call cancelled (OnCancel).
  Mutex mu;
  absl::Time deadline ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  absl::Time seen_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
};

// What server A's handlers saw of their outgoing calls.
struct Upstream {
  Notification started;        // The outgoing call was started.
  Notification outgoing_done;  // ...and ended.
  Mutex mu;
  absl::Status outgoing ABSL_GUARDED_BY(mu) = absl::UnknownError("unset");
  int ended ABSL_GUARDED_BY(mu) = 0;  // Outgoing calls ended so far.
  int ended_ok ABSL_GUARDED_BY(mu) = 0;
  CondVar cv;
  // parent->size() right after the outgoing call started.
  size_t registrations_while_open ABSL_GUARDED_BY(mu) = 0;
  // The stream A opened to B (destroyed before A's channel to B).
  std::unique_ptr<Stream> stream ABSL_GUARDED_BY(mu);

  void Ended(absl::Status s) {
    {
      MutexLock lock(&mu);
      ++ended;
      if (s.ok()) ++ended_ok;
      outgoing = std::move(s);
    }
    cv.SignalAll();
    outgoing_done.Notify();
  }
  absl::Status Outgoing() {
    MutexLock lock(&mu);
    return outgoing;
  }
};

class PropagationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartB();
    auto to_b = Channel::Create(absl::StrCat("127.0.0.1:", b_->port()));
    ASSERT_TRUE(to_b.ok()) << to_b.status();
    to_b_ = *std::move(to_b);
    StartA();
    auto client = Channel::Create(absl::StrCat("127.0.0.1:", a_->port()));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // Parents before children: A's shutdown cancels its calls' outgoing
  // calls, which need the channel to B; streams go before that channel.
  void TearDown() override {
    client_.reset();
    if (a_ != nullptr) a_->Shutdown(absl::ZeroDuration());
    a_.reset();
    {
      MutexLock lock(&up_.mu);
      up_.stream.reset();
    }
    to_b_.reset();
    b_.reset();
  }

  void StartB() {
    b_ = std::make_unique<Server>(ServerOptions());
    Downstream* down = &down_;
    // Never answers; records its deadline and its cancellation.
    ASSERT_TRUE(b_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.B/Hang",
                        [down](ServerContext& ctx, const EchoRequest&,
                               EchoResponse*, Completion done) {
                          down->calls++;
                          {
                            MutexLock lock(&down->mu);
                            down->deadline = ctx.deadline();
                            down->seen_at = absl::Now();
                          }
                          ctx.OnCancel([down, d = std::make_shared<Completion>(
                                                  std::move(done))] {
                            down->cancelled.Notify();
                          });
                          down->started.Notify();
                        }))
                    .ok());
    ASSERT_TRUE(b_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.B/Echo",
                        [down](ServerContext&, const EchoRequest& req,
                               EchoResponse* resp, Completion done) {
                          down->calls++;
                          resp->set_message(req.message());
                          std::move(done).Finish(absl::OkStatus());
                        }))
                    .ok());
    // Answers 200 ms later.
    ASSERT_TRUE(b_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.B/Later",
                        [down](ServerContext& ctx, const EchoRequest& req,
                               EchoResponse* resp, Completion done) {
                          down->calls++;
                          resp->set_message(req.message());
                          ctx.RunAfter(absl::Milliseconds(200),
                                       [d = std::make_shared<Completion>(
                                            std::move(done))] {
                                         std::move(*d).Finish(
                                             absl::OkStatus());
                                       });
                        }))
                    .ok());
    // A bidi stream that never answers; records its cancellation.
    ASSERT_TRUE(
        b_->RegisterMethod(BidiStreamingCallbackMethod<EchoRequest,
                                                       EchoResponse>(
                  "test.B/Chat",
                  [down](ServerContext& ctx,
                         ServerReaderWriter<EchoRequest, EchoResponse>,
                         Completion done) {
                    down->calls++;
                    ctx.OnCancel([down, d = std::make_shared<Completion>(
                                            std::move(done))] {
                      down->cancelled.Notify();
                    });
                    down->started.Notify();
                  }))
            .ok());
    ASSERT_TRUE(b_->Start().ok());
  }

  void StartA() {
    a_ = std::make_unique<Server>(ServerOptions());
    Upstream* up = &up_;
    Channel* to_b = to_b_.get();
    // Calls B's method named in the request with the inherited options (and
    // a 10 s timeout of its own), and answers with that call's status.
    ASSERT_TRUE(a_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.A/Relay",
                        [up, to_b](ServerContext& ctx, const EchoRequest& req,
                                   EchoResponse*, Completion done) {
                          CallOptions options = CallOptions::From(ctx);
                          options.timeout = absl::Seconds(10);
                          auto resp = std::make_shared<EchoResponse>();
                          to_b->CallAsync(
                              req.message(), req, resp.get(), options,
                              [up, resp, done = std::move(done)](
                                  absl::Status s) mutable {
                                up->Ended(s);
                                std::move(done).Finish(std::move(s));
                              });
                          {
                            MutexLock lock(&up->mu);
                            up->registrations_while_open =
                                options.parent->size();
                          }
                          up->started.Notify();
                        }))
                    .ok());
    // Starts B/Later and answers at once: the outgoing call outlives the
    // incoming one.
    ASSERT_TRUE(a_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.A/RelayAndFinish",
                        [up, to_b](ServerContext& ctx, const EchoRequest& req,
                                   EchoResponse*, Completion done) {
                          auto resp = std::make_shared<EchoResponse>();
                          to_b->CallAsync("test.B/Later", req, resp.get(),
                                          CallOptions::From(ctx),
                                          [up, resp](absl::Status s) {
                                            if (s.ok() &&
                                                resp->message() != "later") {
                                              s = absl::InternalError(
                                                  resp->message());
                                            }
                                            up->Ended(s);
                                          });
                          std::move(done).Finish(absl::OkStatus());
                        }))
                    .ok());
    // Waits for its own cancellation, then calls B/Echo (unary) or opens
    // B/Chat (stream), as the request says, from the cancelled context.
    ASSERT_TRUE(a_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.A/CallWhenCancelled",
                        [up, to_b](ServerContext& ctx, const EchoRequest& req,
                                   EchoResponse*, Completion done) {
                          const bool stream = req.message() == "stream";
                          ctx.OnCancel([up, to_b, &ctx, stream,
                                        d = std::make_shared<Completion>(
                                            std::move(done))] {
                            if (stream) {
                              auto s = Stream::Open(
                                  *to_b, "test.B/Chat",
                                  MethodKind::kBidiStreaming, nullptr,
                                  CallOptions::From(ctx));
                              s->OnDone(
                                  [up](absl::Status st) { up->Ended(st); });
                              MutexLock lock(&up->mu);
                              up->stream = std::move(s);
                              return;
                            }
                            auto resp = std::make_shared<EchoResponse>();
                            to_b->CallAsync("test.B/Echo", EchoRequest(),
                                            resp.get(), CallOptions::From(ctx),
                                            [up, resp](absl::Status s) {
                                              up->Ended(s);
                                            });
                          });
                          up->started.Notify();
                        }))
                    .ok());
    // Sync: `delay_ms` sequential blocking calls to B/Echo under one
    // incoming call; answers with the most registrations seen after any of
    // them ended.
    ASSERT_TRUE(a_->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.A/Fanout",
                        [to_b](ServerContext& ctx, const EchoRequest& req,
                               EchoResponse* resp) -> absl::Status {
                          const CallOptions options = CallOptions::From(ctx);
                          size_t most = 0;
                          for (uint32_t i = 0; i < req.delay_ms(); ++i) {
                            EchoRequest r;
                            r.set_message(absl::StrCat(i));
                            EchoResponse out;
                            absl::Status s =
                                to_b->Call("test.B/Echo", r, &out, options);
                            if (!s.ok()) return s;
                            if (out.message() != r.message()) {
                              return absl::InternalError("wrong answer");
                            }
                            most = std::max(most, options.parent->size());
                          }
                          resp->set_message(absl::StrCat(most));
                          return absl::OkStatus();
                        }))
                    .ok());
    // Opens a bidi stream to B/Chat with the inherited options and answers
    // with its final status.
    ASSERT_TRUE(a_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.A/StreamRelay",
                        [up, to_b](ServerContext& ctx, const EchoRequest&,
                                   EchoResponse*, Completion done) {
                          auto s = Stream::Open(
                              *to_b, "test.B/Chat", MethodKind::kBidiStreaming,
                              nullptr, CallOptions::From(ctx));
                          s->OnDone([up, done = std::move(done)](
                                        absl::Status st) mutable {
                            up->Ended(st);
                            std::move(done).Finish(std::move(st));
                          });
                          {
                            MutexLock lock(&up->mu);
                            up->stream = std::move(s);
                          }
                          up->started.Notify();
                        }))
                    .ok());
    ASSERT_TRUE(a_->Start().ok());
  }

  // Starts `method` on A asynchronously; `done` notified with its status.
  CallHandle StartOnA(const std::string& method, const EchoRequest& req,
                      absl::Status* status, Notification* done,
                      CallOptions options = {}) {
    return client_->CallAsync(method, req, &client_resp_, options,
                              [status, done](absl::Status s) {
                                *status = std::move(s);
                                done->Notify();
                              });
  }

  Downstream down_;
  Upstream up_;
  std::unique_ptr<Server> b_;
  std::unique_ptr<Channel> to_b_;
  std::unique_ptr<Server> a_;
  std::unique_ptr<Channel> client_;
  EchoResponse client_resp_;
};

TEST_F(PropagationTest, ClientCancelStopsTheDownstreamCall) {
  EchoRequest req;
  req.set_message("test.B/Hang");
  absl::Status client_status;
  Notification client_done;
  CallHandle h = StartOnA("test.A/Relay", req, &client_status, &client_done);
  ASSERT_TRUE(down_.started.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(up_.started.WaitForNotificationWithTimeout(kWait));
  {
    MutexLock lock(&up_.mu);
    EXPECT_EQ(up_.registrations_while_open, 1u);  // The open call to B.
  }
  client_->Cancel(h);
  ASSERT_TRUE(client_done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(client_status.code(), absl::StatusCode::kCancelled)
      << client_status;
  ASSERT_TRUE(down_.cancelled.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(up_.outgoing_done.WaitForNotificationWithTimeout(kWait));
  absl::Status outgoing = up_.Outgoing();
  EXPECT_EQ(outgoing.code(), absl::StatusCode::kCancelled) << outgoing;
  EXPECT_EQ(down_.calls.load(), 1);
}

TEST_F(PropagationTest, ClientDeadlineBoundsTheDownstreamDeadline) {
  EchoRequest req;
  req.set_message("test.B/Hang");
  CallOptions options;
  options.timeout = absl::Milliseconds(300);
  EchoResponse resp;
  const absl::Time start = absl::Now();
  const absl::Time client_deadline = start + options.timeout;
  absl::Status s = client_->Call("test.A/Relay", req, &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  ASSERT_TRUE(down_.started.WaitForNotificationWithTimeout(kWait));
  {
    MutexLock lock(&down_.mu);
    // Each hop counts the budget it was sent from when it read it, so B's
    // deadline can exceed the client's only by the time that passed from
    // `start` to B's handler (plus the microsecond rounding of the wire
    // budget). A's own 10 s timeout plays no part.
    EXPECT_LE(down_.deadline, client_deadline + (down_.seen_at - start) +
                                  absl::Milliseconds(1))
        << "B deadline " << down_.deadline << ", client deadline "
        << client_deadline << ", B saw the call " << (down_.seen_at - start)
        << " after the client started it";
  }
  // B's call ends (its inherited deadline, or the CANCEL from A).
  ASSERT_TRUE(down_.cancelled.WaitForNotificationWithTimeout(kWait));
  // A's outgoing call ends too. How A learns of the end is a race: the
  // client's channel CANCELs at its deadline, which may reach A before A's
  // own timer (set from the budget it read, a little later) fires; so
  // CANCELLED or DEADLINE_EXCEEDED. ServerDeadlineCancelsWithDeadlineExceeded
  // has A's timer alone.
  ASSERT_TRUE(up_.outgoing_done.WaitForNotificationWithTimeout(kWait));
  absl::Status outgoing = up_.Outgoing();
  EXPECT_TRUE(outgoing.code() == absl::StatusCode::kDeadlineExceeded ||
              outgoing.code() == absl::StatusCode::kCancelled)
      << outgoing;
}

// A raw client that sends a 300 ms budget and never CANCELs: A's deadline
// timer alone ends A's call, and A's outgoing call ends with
// DEADLINE_EXCEEDED (its own inherited deadline or A's cancellation, both
// report it), B sees its call cancelled, and the raw client gets
// DEADLINE_EXCEEDED from A.
TEST_F(PropagationTest, ServerDeadlineCancelsWithDeadlineExceeded) {
  auto raw = testing::RawClient::Connect(a_->port());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EchoRequest req;
  req.set_message("test.B/Hang");
  wire::FrameMeta request;
  request.set_call_id(1);
  request.set_kind(wire::REQUEST);
  request.set_method("test.A/Relay");
  request.set_timeout_us(300000);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(
      (*raw)->Write(testing::EncodeFrame(request, req.SerializeAsString()))
          .ok());
  absl::StatusOr<testing::Frame> answer = (*raw)->ReadFrame(kWait);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->meta.kind(), wire::RESPONSE);
  EXPECT_EQ(answer->meta.status_code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  ASSERT_TRUE(down_.cancelled.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(up_.outgoing_done.WaitForNotificationWithTimeout(kWait));
  absl::Status outgoing = up_.Outgoing();
  EXPECT_EQ(outgoing.code(), absl::StatusCode::kDeadlineExceeded) << outgoing;
  MutexLock lock(&down_.mu);
  EXPECT_LE(down_.deadline,
            start + absl::Milliseconds(300) + (down_.seen_at - start) +
                absl::Milliseconds(1));
}

TEST_F(PropagationTest, CallFromACancelledContextFailsUnsent) {
  absl::Status client_status;
  Notification client_done;
  CallHandle h = StartOnA("test.A/CallWhenCancelled", EchoRequest(),
                          &client_status, &client_done);
  ASSERT_TRUE(up_.started.WaitForNotificationWithTimeout(kWait));
  client_->Cancel(h);
  ASSERT_TRUE(up_.outgoing_done.WaitForNotificationWithTimeout(kWait));
  absl::Status outgoing = up_.Outgoing();
  EXPECT_EQ(outgoing.code(), absl::StatusCode::kCancelled) << outgoing;
  // A call on the same channel afterwards reaches B first: had the
  // cancelled one been sent, B would have counted it before this one.
  EchoRequest req;
  req.set_message("after");
  EchoResponse resp;
  ASSERT_TRUE(to_b_->Call("test.B/Echo", req, &resp).ok());
  EXPECT_EQ(down_.calls.load(), 1);
  ASSERT_TRUE(client_done.WaitForNotificationWithTimeout(kWait));
}

TEST_F(PropagationTest, StreamFromACancelledContextFailsUnsent) {
  EchoRequest req;
  req.set_message("stream");
  absl::Status client_status;
  Notification client_done;
  CallHandle h = StartOnA("test.A/CallWhenCancelled", req, &client_status,
                          &client_done);
  ASSERT_TRUE(up_.started.WaitForNotificationWithTimeout(kWait));
  client_->Cancel(h);
  ASSERT_TRUE(up_.outgoing_done.WaitForNotificationWithTimeout(kWait));
  absl::Status outgoing = up_.Outgoing();
  EXPECT_EQ(outgoing.code(), absl::StatusCode::kCancelled) << outgoing;
  EchoResponse resp;
  ASSERT_TRUE(to_b_->Call("test.B/Echo", EchoRequest(), &resp).ok());
  EXPECT_EQ(down_.calls.load(), 1);
  ASSERT_TRUE(client_done.WaitForNotificationWithTimeout(kWait));
}

TEST_F(PropagationTest, SequentialDownstreamCallsDoNotAccumulate) {
  constexpr int kCalls = 1000;
  EchoRequest req;
  req.set_delay_ms(kCalls);  // Fanout's call count.
  CallOptions options;
  options.timeout = absl::Minutes(5);  // A deadline to inherit, too.
  EchoResponse resp;
  absl::Status s = client_->Call("test.A/Fanout", req, &resp, options);
  ASSERT_TRUE(s.ok()) << s;
  // After each call ended, the incoming call's registry was empty.
  EXPECT_EQ(resp.message(), "0");
  EXPECT_EQ(down_.calls.load(), kCalls);
}

TEST_F(PropagationTest, ClientCancelStopsTheDownstreamStream) {
  absl::Status client_status;
  Notification client_done;
  CallHandle h = StartOnA("test.A/StreamRelay", EchoRequest(), &client_status,
                          &client_done);
  ASSERT_TRUE(down_.started.WaitForNotificationWithTimeout(kWait));
  client_->Cancel(h);
  ASSERT_TRUE(down_.cancelled.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(up_.outgoing_done.WaitForNotificationWithTimeout(kWait));
  absl::Status outgoing = up_.Outgoing();
  EXPECT_EQ(outgoing.code(), absl::StatusCode::kCancelled) << outgoing;
  ASSERT_TRUE(client_done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(client_status.code(), absl::StatusCode::kCancelled);
}

TEST_F(PropagationTest, OutgoingCallMayOutliveTheIncomingOne) {
  EchoRequest req;
  req.set_message("later");
  EchoResponse resp;
  // A answers before B (200 ms later); the next calls on A recycle the
  // state of the finished ones while their outgoing calls are open.
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(client_->Call("test.A/RelayAndFinish", req, &resp).ok());
  }
  MutexLock lock(&up_.mu);
  ASSERT_TRUE(up_.cv.WaitUntil(
      &up_.mu, kWait,
      [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return up_.ended == kCalls; }));
  EXPECT_EQ(up_.ended_ok, kCalls) << up_.outgoing;
}

}  // namespace
}  // namespace bevrpc
