// End-to-end unary calls through the real Server and Channel, in one process
// over loopback TCP: results, errors, metadata, deadlines on both sides,
// cancellation, pipelining, sync handlers and graceful shutdown.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "transport/sync.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.bevrpc.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/testing/raw_client.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

constexpr char kEcho[] = "bevrpc.echo.Echo/Echo";

// A loopback socket bound to a free port; listening if `listen_too`.
// Returns the fd and sets *port.
int BindLoopback(bool listen_too, int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  if (listen_too && listen(fd, 16) != 0) return -1;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// Test-only methods registered next to the echo service.
struct Probe {
  std::atomic<int> started{0};
  std::atomic<int> cancelled{0};
  Notification cancel_seen;
  // test.Probe/Block: notifies block_started, then holds its worker until
  // the test notifies release (at most a minute, a hang guard).
  Notification block_started;
  Notification release;
  // The request messages test.Probe/Sleep ran with, in order.
  Mutex mu;
  std::vector<std::string> slept ABSL_GUARDED_BY(mu);

  std::vector<std::string> Slept() {
    MutexLock lock(&mu);
    return slept;
  }
};

class UnaryCallTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(ServerOptions()); }

  void StartServer(ServerOptions options) {
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(echo::RegisterEchoService(*server_).ok());
    Probe* probe = &probe_;
    // Never finishes on its own; records cancellation.
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.Probe/Hang",
                        [probe](ServerContext& ctx, const EchoRequest&,
                                EchoResponse*, Completion done) {
                          probe->started++;
                          ctx.OnCancel([probe, d = std::make_shared<Completion>(
                                                   std::move(done))] {
                            probe->cancelled++;
                            probe->cancel_seen.Notify();
                          });
                        }))
                    .ok());
    // Echoes request metadata back as trailers.
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.Probe/Headers",
                        [](ServerContext& ctx, const EchoRequest&,
                           EchoResponse* resp, Completion done) {
                          for (const auto& [k, v] : ctx.metadata()) {
                            ctx.AddTrailer("echo-" + k, v);
                          }
                          resp->set_message(ctx.peer());
                          std::move(done).Finish(absl::OkStatus());
                        }))
                    .ok());
    // Sync flavour: blocks a worker for delay_ms.
    ASSERT_TRUE(server_
                    ->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.Probe/Sleep",
                        [probe](ServerContext&, const EchoRequest& req,
                                EchoResponse* resp) {
                          probe->started++;
                          {
                            MutexLock lock(&probe->mu);
                            probe->slept.push_back(req.message());
                          }
                          absl::SleepFor(absl::Milliseconds(req.delay_ms()));
                          resp->set_message(req.message());
                          return absl::OkStatus();
                        }))
                    .ok());
    ASSERT_TRUE(server_
                    ->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.Probe/Block",
                        [probe](ServerContext&, const EchoRequest& req,
                                EchoResponse* resp) {
                          probe->block_started.Notify();
                          if (!probe->release.WaitForNotificationWithTimeout(
                                  absl::Minutes(1))) {
                            return absl::InternalError("never released");
                          }
                          resp->set_message(req.message());
                          return absl::OkStatus();
                        }))
                    .ok());
    ASSERT_TRUE(server_
                    ->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.Probe/Throw",
                        [](ServerContext&, const EchoRequest&,
                           EchoResponse*) -> absl::Status {
                          throw std::runtime_error("boom");
                        }))
                    .ok());
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.Probe/Drop",
                        [](ServerContext&, const EchoRequest&, EchoResponse*,
                           Completion) {}))
                    .ok());
    ASSERT_TRUE(server_->Start().ok());
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  // A test that failed half-way must not leave a worker blocked, or the
  // server's shutdown would wait for it.
  void TearDown() override {
    if (!probe_.release.HasBeenNotified()) probe_.release.Notify();
  }

  std::unique_ptr<Channel> NewChannel(ChannelOptions options = {}) {
    auto channel = Channel::Create(address_, options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return *std::move(channel);
  }

  Probe probe_;
  std::unique_ptr<Server> server_;
  std::string address_;
};

TEST_F(UnaryCallTest, EchoesTheMessage) {
  auto channel = NewChannel();
  EchoRequest req;
  req.set_message("hello");
  EchoResponse resp;
  ASSERT_TRUE(channel->Call(kEcho, req, &resp).ok());
  EXPECT_EQ(resp.message(), "hello");
}

TEST_F(UnaryCallTest, GeneratedStubBlockingAndAsync) {
  auto channel = NewChannel();
  echo::Echo::Stub stub(channel.get());
  EchoRequest req;
  req.set_message("stub");
  absl::StatusOr<EchoResponse> resp = stub.Echo(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->message(), "stub");

  EchoResponse async_resp;
  Notification done;
  absl::Status async_status;
  req.set_message("stub async");
  stub.EchoAsync(req, &async_resp, CallOptions(), [&](absl::Status s) {
    async_status = s;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ASSERT_TRUE(async_status.ok()) << async_status;
  EXPECT_EQ(async_resp.message(), "stub async");
}

TEST_F(UnaryCallTest, HandlerErrorReachesTheClient) {
  auto channel = NewChannel();
  EchoRequest req;
  req.set_fail_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
  req.set_fail_message("not yet");
  EchoResponse resp;
  absl::Status s = channel->Call(kEcho, req, &resp);
  EXPECT_EQ(s, absl::FailedPreconditionError("not yet"));
}

TEST_F(UnaryCallTest, MetadataGoesOutAndTrailersComeBack) {
  auto channel = NewChannel();
  CallOptions options;
  options.metadata["x-request-id"] = "42";
  Metadata trailers;
  EchoResponse resp;
  ASSERT_TRUE(channel
                  ->Call("test.Probe/Headers", EchoRequest(), &resp, options,
                         &trailers)
                  .ok());
  EXPECT_EQ(trailers["echo-x-request-id"], "42");
  EXPECT_TRUE(absl::StartsWith(resp.message(), "127.0.0.1:"));
}

TEST_F(UnaryCallTest, UnknownServiceAndMethodAreUnimplemented) {
  auto channel = NewChannel();
  EchoResponse resp;
  absl::Status s = channel->Call("no.Such/Method", EchoRequest(), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("no.Such"), std::string::npos);
  s = channel->Call("bevrpc.echo.Echo/Nope", EchoRequest(), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("Nope"), std::string::npos);
}

TEST_F(UnaryCallTest, DeadlineExceededOnTheServerStopsTheHandler) {
  // A channel's own timer ends its call and CANCELs it on the server, so
  // only a raw client that never cancels shows the server's timer at work:
  // its answer, and the handler's cancellation.
  auto raw = testing::RawClient::Connect(server_->port());
  ASSERT_TRUE(raw.ok()) << raw.status();
  wire::FrameMeta request;
  request.set_call_id(1);
  request.set_kind(wire::REQUEST);
  request.set_method("test.Probe/Hang");
  request.set_timeout_us(100000);
  ASSERT_TRUE((*raw)->Write(testing::EncodeFrame(request, "")).ok());
  absl::StatusOr<testing::Frame> answer = (*raw)->ReadFrame(absl::Seconds(10));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->meta.kind(), wire::RESPONSE);
  EXPECT_EQ(answer->meta.call_id(), 1u);
  EXPECT_EQ(answer->meta.status_code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(answer->meta.status_message(),
            "deadline exceeded: test.Probe/Hang did not finish within the "
            "caller's 100ms");
  EXPECT_TRUE(
      probe_.cancel_seen.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(probe_.cancelled.load(), 1);

  // Through a channel the caller sees the same code.
  auto channel = NewChannel();
  CallOptions options;
  options.timeout = absl::Milliseconds(100);
  EchoResponse resp;
  absl::Status s = channel->Call("test.Probe/Hang", EchoRequest(), &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
}

// The channel CANCELs the call at its deadline, so the server drops the
// delayed answer (LateResponseAfterTheDeadlineIsDropped has a server that
// answers anyway).
TEST_F(UnaryCallTest, DelayedEchoTimesOutAndTheConnectionStaysHealthy) {
  auto channel = NewChannel();
  EchoRequest req;
  req.set_message("late");
  req.set_delay_ms(300);
  CallOptions options;
  options.timeout = absl::Milliseconds(50);
  EchoResponse resp;
  EXPECT_EQ(channel->Call(kEcho, req, &resp, options).code(),
            absl::StatusCode::kDeadlineExceeded);
  // The connection is still healthy afterwards.
  req.set_delay_ms(0);
  req.set_message("next");
  ASSERT_TRUE(channel->Call(kEcho, req, &resp).ok());
  EXPECT_EQ(resp.message(), "next");
}

// The next frame of `kind` from `peer`, skipping others (a keepalive).
absl::StatusOr<testing::Frame> NextFrameOfKind(testing::RawClient& peer,
                                               wire::FrameKind kind) {
  while (true) {
    absl::StatusOr<testing::Frame> f = peer.ReadFrame(absl::Seconds(10));
    if (!f.ok() || f->meta.kind() == kind) return f;
  }
}

// A test playing the server answers a call only after the client gave up
// on it: the answer must be dropped, never written into the caller's
// response, and the next call on the connection gets its own.
TEST_F(UnaryCallTest, LateResponseAfterTheDeadlineIsDropped) {
  int port = 0;
  const int listener = BindLoopback(/*listen_too=*/true, &port);
  ASSERT_GE(listener, 0);
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(channel.ok());
  EchoRequest req;
  req.set_message("late");
  EchoResponse resp;
  Notification done;
  absl::Status result;
  CallOptions options;
  options.timeout = absl::Milliseconds(100);
  (*channel)->CallAsync(kEcho, req, &resp, options, [&](absl::Status s) {
    result = s;
    done.Notify();
  });
  pollfd pfd{listener, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, /*timeout_ms=*/10000), 1);
  const int fd = accept(listener, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  std::unique_ptr<testing::RawClient> server = testing::RawClient::Adopt(fd);
  absl::StatusOr<testing::Frame> request =
      NextFrameOfKind(*server, wire::REQUEST);
  ASSERT_TRUE(request.ok()) << request.status();
  const uint64_t late_id = request->meta.call_id();

  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(result.code(), absl::StatusCode::kDeadlineExceeded) << result;
  absl::StatusOr<testing::Frame> cancel = NextFrameOfKind(*server, wire::CANCEL);
  ASSERT_TRUE(cancel.ok()) << cancel.status();
  EXPECT_EQ(cancel->meta.call_id(), late_id);

  EchoResponse answer;
  answer.set_message("too late");
  wire::FrameMeta meta;
  meta.set_call_id(late_id);
  meta.set_kind(wire::RESPONSE);
  ASSERT_TRUE(
      server->Write(testing::EncodeFrame(meta, answer.SerializeAsString()))
          .ok());

  EchoRequest next;
  next.set_message("next");
  EchoResponse next_resp;
  Notification next_done;
  absl::Status next_status;
  (*channel)->CallAsync(kEcho, next, &next_resp, CallOptions(),
                        [&](absl::Status s) {
                          next_status = s;
                          next_done.Notify();
                        });
  request = NextFrameOfKind(*server, wire::REQUEST);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_NE(request->meta.call_id(), late_id);
  meta.set_call_id(request->meta.call_id());
  answer.set_message("next");
  ASSERT_TRUE(
      server->Write(testing::EncodeFrame(meta, answer.SerializeAsString()))
          .ok());
  ASSERT_TRUE(next_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(next_status.ok()) << next_status;
  EXPECT_EQ(next_resp.message(), "next");
  EXPECT_EQ(resp.message(), "");  // The late answer went nowhere.
  close(listener);
}

// A test playing the only server refuses the second of two calls with
// GOAWAY (last_call_id = the first): it was never processed, and no other
// endpoint exists, so the channel sends it again on a new connection to
// the same address (a prefork port, a restarting single replica) instead
// of failing it.
TEST_F(UnaryCallTest, CallRefusedByGoAwayGoesAgainOnANewConnection) {
  int port = 0;
  const int listener = BindLoopback(/*listen_too=*/true, &port);
  ASSERT_GE(listener, 0);
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(channel.ok());
  EchoRequest req[2];
  EchoResponse resp[2];
  Notification done[2];
  absl::Status result[2];
  for (int i = 0; i < 2; ++i) {
    req[i].set_message(absl::StrCat("call ", i));
    (*channel)->CallAsync(kEcho, req[i], &resp[i], CallOptions(),
                          [&, i](absl::Status s) {
                            result[i] = s;
                            done[i].Notify();
                          });
  }
  auto accept_one = [&]() -> std::unique_ptr<testing::RawClient> {
    pollfd pfd{listener, POLLIN, 0};
    if (poll(&pfd, 1, /*timeout_ms=*/10000) != 1) return nullptr;
    const int fd = accept(listener, nullptr, nullptr);
    return fd < 0 ? nullptr : testing::RawClient::Adopt(fd);
  };
  auto answer = [](testing::RawClient& peer, const testing::Frame& request) {
    EchoRequest got;
    EXPECT_TRUE(got.ParseFromString(request.payload));
    EchoResponse out;
    out.set_message(got.message());
    wire::FrameMeta meta;
    meta.set_call_id(request.meta.call_id());
    meta.set_kind(wire::RESPONSE);
    return peer.Write(testing::EncodeFrame(meta, out.SerializeAsString()));
  };
  std::unique_ptr<testing::RawClient> first = accept_one();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<testing::Frame> a = NextFrameOfKind(*first, wire::REQUEST);
  absl::StatusOr<testing::Frame> b = NextFrameOfKind(*first, wire::REQUEST);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << " " << b.status();
  wire::FrameMeta goaway;
  goaway.set_kind(wire::GOAWAY);
  goaway.set_last_call_id(a->meta.call_id());
  ASSERT_TRUE(first->Write(testing::EncodeFrame(goaway, "")).ok());
  ASSERT_TRUE(answer(*first, *a).ok());

  std::unique_ptr<testing::RawClient> second = accept_one();
  ASSERT_NE(second, nullptr) << "no new connection for the refused call";
  absl::StatusOr<testing::Frame> again = NextFrameOfKind(*second, wire::REQUEST);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->payload, b->payload);
  ASSERT_TRUE(answer(*second, *again).ok());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(done[i].WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(result[i].ok()) << i << ": " << result[i];
    EXPECT_EQ(resp[i].message(), req[i].message());
  }
  close(listener);
}

TEST_F(UnaryCallTest, ClientDeadlineFiresEvenIfTheServerNeverAnswers) {
  // A socket that listens but never accepts or answers: only the
  // channel's own timer can end the call.
  int port = 0;
  int fd = BindLoopback(/*listen_too=*/true, &port);
  ASSERT_GE(fd, 0);
  auto quiet = Channel::Create(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(quiet.ok());
  CallOptions options;
  options.timeout = absl::Milliseconds(150);
  EchoResponse resp;
  absl::Time start = absl::Now();
  absl::Status s = (*quiet)->Call(kEcho, EchoRequest(), &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(140));
  close(fd);
}

TEST_F(UnaryCallTest, ClientCancelReachesTheHandler) {
  auto channel = NewChannel();
  Notification done;
  absl::Status result;
  EchoResponse resp;
  CallHandle handle = channel->CallAsync(
      "test.Probe/Hang", EchoRequest(), &resp, CallOptions(),
      [&](absl::Status s) {
        result = s;
        done.Notify();
      });
  // Wait until the handler runs, then cancel.
  absl::Time until = absl::Now() + absl::Seconds(5);
  while (probe_.started.load() == 0 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(probe_.started.load(), 1);
  channel->Cancel(handle);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(probe_.cancel_seen.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(probe_.cancelled.load(), 1);
}

TEST_F(UnaryCallTest, TenThousandPipelinedCallsOnOneConnection) {
  auto channel = NewChannel();  // One connection.
  constexpr int kCalls = 10000;
  std::vector<EchoRequest> reqs(kCalls);
  std::vector<EchoResponse> resps(kCalls);
  std::atomic<int> ok{0}, finished{0};
  Notification all_done;
  for (int i = 0; i < kCalls; ++i) {
    reqs[i].set_message(absl::StrCat("m", i));
    channel->CallAsync(kEcho, reqs[i], &resps[i], CallOptions(),
                       [&, i](absl::Status s) {
                         if (s.ok() && resps[i].message() == absl::StrCat("m", i)) {
                           ok++;
                         }
                         if (++finished == kCalls) all_done.Notify();
                       });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_EQ(server_->num_connections(), 1u);
}

TEST_F(UnaryCallTest, RefusedConnectionIsUnavailable) {
  int port = 0;
  int fd = BindLoopback(/*listen_too=*/false, &port);
  ASSERT_GE(fd, 0);
  close(fd);  // Bound once, now closed: nothing listens there.
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(channel.ok());
  EchoResponse resp;
  absl::Status s = (*channel)->Call(kEcho, EchoRequest(), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

// One worker, held by test.Probe/Block; a call with a short deadline waits
// in the worker queue until its deadline has passed; its handler must then
// be skipped, never run late.
TEST_F(UnaryCallTest, SyncHandlerWhoseDeadlinePassedInTheQueueNeverRuns) {
  server_->Shutdown(absl::ZeroDuration());
  ServerOptions options;
  options.worker_threads = 1;
  options.max_queued_calls = 2;
  StartServer(options);
  auto channel = NewChannel();  // One connection: frames arrive in order.
  EchoRequest block;
  block.set_message("block");
  EchoResponse block_resp, quick_resp, after_resp, overflow_resp;
  Notification block_done, quick_done, after_done;
  absl::Status block_status, quick_status, after_status;
  channel->CallAsync("test.Probe/Block", block, &block_resp, CallOptions(),
                     [&](absl::Status s) {
                       block_status = s;
                       block_done.Notify();
                     });
  ASSERT_TRUE(probe_.block_started.WaitForNotificationWithTimeout(
      absl::Seconds(10)));  // The only worker is now busy.

  EchoRequest quick;
  quick.set_message("quick");
  CallOptions short_deadline;
  short_deadline.timeout = absl::Milliseconds(100);
  channel->CallAsync("test.Probe/Sleep", quick, &quick_resp, short_deadline,
                     [&](absl::Status s) {
                       quick_status = s;
                       quick_done.Notify();
                     });
  ASSERT_TRUE(quick_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(quick_status.code(), absl::StatusCode::kDeadlineExceeded)
      << quick_status;

  // The quick call is still in the queue, past its deadline: with "after"
  // queued behind it the queue is full, and a third call is refused.
  EchoRequest after;
  after.set_message("after");
  channel->CallAsync("test.Probe/Sleep", after, &after_resp, CallOptions(),
                     [&](absl::Status s) {
                       after_status = s;
                       after_done.Notify();
                     });
  absl::Status overflow =
      channel->Call("test.Probe/Sleep", EchoRequest(), &overflow_resp);
  EXPECT_EQ(overflow.code(), absl::StatusCode::kResourceExhausted) << overflow;
  EXPECT_TRUE(absl::StrContains(
      overflow.message(),
      "2 calls already wait for a worker thread (max_queued_calls 2)"))
      << overflow;

  // The worker takes the queue in order: "after" runs only once the quick
  // call's turn has passed, so by then its handler has run or never will.
  probe_.release.Notify();
  ASSERT_TRUE(block_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(block_status.ok()) << block_status;
  ASSERT_TRUE(after_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(after_status.ok()) << after_status;
  EXPECT_EQ(after_resp.message(), "after");
  EXPECT_EQ(probe_.Slept(), std::vector<std::string>{"after"});
}

TEST_F(UnaryCallTest, ThrowingOrDroppingHandlersGiveInternal) {
  auto channel = NewChannel();
  EchoResponse resp;
  absl::Status s = channel->Call("test.Probe/Throw", EchoRequest(), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("test.Probe/Throw"), std::string::npos) << s;
  s = channel->Call("test.Probe/Drop", EchoRequest(), &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  // The server is still fine.
  EchoRequest req;
  req.set_message("alive");
  ASSERT_TRUE(channel->Call(kEcho, req, &resp).ok());
}

TEST_F(UnaryCallTest, OversizedRequestFailsLocally) {
  ChannelOptions options;
  options.limits.max_message_bytes = 1024;
  auto channel = NewChannel(options);
  EchoRequest req;
  req.set_message(std::string(2000, 'x'));
  EchoResponse resp;
  absl::Status s = channel->Call(kEcho, req, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("1024"), std::string::npos);
}

TEST_F(UnaryCallTest, LargeMessagesRoundTrip) {
  auto channel = NewChannel();
  EchoRequest req;
  req.set_message(std::string(3 * 1024 * 1024, 'q'));
  EchoResponse resp;
  ASSERT_TRUE(channel->Call(kEcho, req, &resp).ok());
  EXPECT_EQ(resp.message().size(), req.message().size());
}

TEST_F(UnaryCallTest, GracefulShutdownFinishesOpenCallsAndRefusesNewOnes) {
  auto channel = NewChannel();
  EchoRequest req;
  req.set_message("in flight");
  EchoResponse resp;
  Notification done;
  absl::Status result;
  channel->CallAsync("test.Probe/Block", req, &resp, CallOptions(),
                     [&](absl::Status s) {
                       result = s;
                       done.Notify();
                     });
  ASSERT_TRUE(
      probe_.block_started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread stopper([this] { server_->Shutdown(absl::Seconds(30)); });
  // The handler is let go only once the drain has begun, so the call is
  // open through it.
  absl::Time until = absl::Now() + absl::Seconds(10);
  while (!server_->draining() && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_TRUE(server_->draining());
  probe_.release.Notify();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  stopper.join();
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_EQ(resp.message(), "in flight");
  EchoRequest after;
  EXPECT_EQ(channel->Call(kEcho, after, &resp).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(UnaryCallTest, ShutdownGraceRunsOutAndFailsTheRest) {
  auto channel = NewChannel();
  EchoResponse resp;
  Notification done;
  absl::Status result;
  channel->CallAsync("test.Probe/Hang", EchoRequest(), &resp, CallOptions(),
                     [&](absl::Status s) {
                       result = s;
                       done.Notify();
                     });
  absl::Time until = absl::Now() + absl::Seconds(10);
  while (probe_.started.load() == 0 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(probe_.started.load(), 1);
  server_->Shutdown(absl::Milliseconds(100));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(result, absl::UnavailableError(
                        "server shut down before the call finished"));
  // The response goes out before the handler's OnCancel runs on the loop.
  EXPECT_TRUE(
      probe_.cancel_seen.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(probe_.cancelled.load(), 1);
}

// An async handler hands its Completion to a thread of its own that
// finishes it only after the server's grace ran out. Shutdown() waits for
// it (the Completion posts to the server's loops), so finishing late is
// safe; under ASan a loop destroyed too early would be a use after free.
TEST_F(UnaryCallTest, ShutdownWaitsForACallItsHandlerStillHolds) {
  auto server = std::make_unique<Server>(ServerOptions());
  Notification handed_over;
  Notification finish;
  std::atomic<bool> finished{false};
  std::thread holder;
  ASSERT_TRUE(server
                  ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                      "test.Late/Hold",
                      [&](ServerContext&, const EchoRequest&, EchoResponse*,
                          Completion done) {
                        holder = std::thread([&, d = std::move(done)]() mutable {
                          handed_over.Notify();
                          finish.WaitForNotificationWithTimeout(
                              absl::Minutes(1));
                          std::move(d).Finish(absl::OkStatus());
                          finished = true;
                        });
                      }))
                  .ok());
  ASSERT_TRUE(server->Start().ok());
  auto channel =
      Channel::Create(absl::StrCat("127.0.0.1:", server->port())).value();
  EchoResponse resp;
  Notification done;
  absl::Status result;
  channel->CallAsync("test.Late/Hold", EchoRequest(), &resp, CallOptions(),
                     [&](absl::Status s) {
                       result = s;
                       done.Notify();
                     });
  ASSERT_TRUE(handed_over.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::atomic<bool> shut_down{false};
  std::thread stopper([&] {
    server->Shutdown(absl::Milliseconds(50));
    shut_down = true;
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(result, absl::UnavailableError(
                        "server shut down before the call finished"));
  EXPECT_FALSE(shut_down.load());  // It cannot end before the call does.
  finish.Notify();
  stopper.join();
  EXPECT_TRUE(finished.load());
  holder.join();
  server.reset();
}

TEST_F(UnaryCallTest, ManyThreadsShareOneChannel) {
  ChannelOptions options;
  options.num_connections = 2;
  options.io_threads = 2;
  auto channel = NewChannel(options);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        EchoRequest req;
        req.set_message(absl::StrCat(t, "-", i));
        EchoResponse resp;
        if (channel->Call(kEcho, req, &resp).ok() &&
            resp.message() == req.message()) {
          ok++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 800);
}

}  // namespace
}  // namespace bevrpc
