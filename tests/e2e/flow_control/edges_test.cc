// Races and edges around flow control: a deadline racing AddTrailer()
// (for ThreadSanitizer), a channel destroyed while a callback starts a
// follow-up call, absurd timeouts on the wire, frame limits the header
// cannot carry, and a client that half-closes its socket.
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "tests/e2e/flow_control/flow_fixture.h"
#include "tests/testing/raw_client.h"

namespace bevrpc::testing {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

constexpr char kTrailerRace[] = "test.Edge/TrailerRace";

class EdgesTest : public FlowFixture {
 protected:
  // Adds a method whose handler keeps adding trailers from its own thread
  // until the call is cancelled (its deadline, on the loop thread, sends
  // the response with the trailers meanwhile).
  void AddTrailerRaceMethod(Results* finished) {
    ASSERT_TRUE(
        server_
            ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                kTrailerRace,
                [finished](ServerContext& ctx, const EchoRequest&,
                           EchoResponse*, Completion done) {
                  std::thread([&ctx, finished,
                               done = std::move(done)]() mutable {
                    // Until the deadline cancels the call (bounded).
                    const absl::Time limit = absl::Now() + kWait;
                    for (int i = 0; !ctx.IsCancelled() && absl::Now() < limit;
                         ++i) {
                      ctx.AddTrailer(absl::StrCat("k", i % 8),
                                     absl::StrCat(i));
                    }
                    std::move(done).Finish(absl::OkStatus());
                    finished->Callback()(absl::OkStatus());
                  }).detach();
                }))
            .ok());
  }
};

TEST_F(EdgesTest, DeadlineRacingAddTrailerIsSafe) {
  Results finished;  // One entry per handler thread that has returned.
  server_ = std::make_unique<Server>(ServerOptions());
  AddTrailerRaceMethod(&finished);
  ASSERT_TRUE(server_->Start().ok());
  address_ = absl::StrCat("127.0.0.1:", server_->port());
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    EchoRequest req;
    EchoResponse resp;
    CallOptions options;
    options.timeout = absl::Milliseconds(20);
    absl::Status s = channel->Call(kTrailerRace, req, &resp, options);
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  }
  ASSERT_TRUE(finished.AwaitCount(kCalls));
}

// The callback of a call that the channel's destruction cancels starts a
// follow-up call on the channel being destroyed: it must fail with
// CANCELLED (exactly once), never touch freed memory (ASan).
TEST_F(EdgesTest, FollowUpCallDuringChannelDestructionIsCancelled) {
  StartServer(ServerOptions());
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  Channel* raw = channel.get();
  EchoRequest req;
  req.set_message("first");
  EchoResponse first_resp, follow_resp;
  Notification first_done, follow_done;
  absl::Status first_status, follow_status;
  std::atomic<int> follow_calls{0};
  raw->CallAsync(kHold, req, &first_resp, CallOptions(), [&](absl::Status s) {
    first_status = s;
    raw->CallAsync(kEcho, req, &follow_resp, CallOptions(),
                   [&](absl::Status s2) {
                     follow_calls++;
                     follow_status = s2;
                     follow_done.Notify();
                   });
    first_done.Notify();
  });
  ASSERT_TRUE(gate().AwaitStarted(1));
  channel.reset();
  ASSERT_TRUE(first_done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(first_status.code(), absl::StatusCode::kCancelled) << first_status;
  ASSERT_TRUE(follow_done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(follow_status.code(), absl::StatusCode::kCancelled)
      << follow_status;
  EXPECT_EQ(follow_calls.load(), 1);
}

wire::FrameMeta EchoRequestMeta(uint64_t call_id) {
  wire::FrameMeta meta;
  meta.set_call_id(call_id);
  meta.set_kind(wire::REQUEST);
  meta.set_method(kEcho);
  return meta;
}

std::string EchoPayload(const std::string& message, uint32_t delay_ms = 0) {
  EchoRequest req;
  req.set_message(message);
  req.set_delay_ms(delay_ms);
  return req.SerializeAsString();
}

// timeout_us is unsigned on the wire; values past 2^63 must not wrap into a
// negative (already expired) deadline.
TEST_F(EdgesTest, HugeTimeoutOnTheWireMeansNoDeadline) {
  StartServer(ServerOptions());
  auto client = RawClient::Connect(server_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  const uint64_t timeouts[] = {(uint64_t{1} << 63) + 5, ~uint64_t{0},
                               uint64_t{1} << 62};
  uint64_t id = 1;
  for (uint64_t timeout : timeouts) {
    wire::FrameMeta meta = EchoRequestMeta(id);
    meta.set_timeout_us(timeout);
    ASSERT_TRUE((*client)->Write(EncodeFrame(meta, EchoPayload("t"))).ok());
    absl::StatusOr<Frame> frame = (*client)->ReadFrame(kWait);
    ASSERT_TRUE(frame.ok()) << frame.status();
    EXPECT_EQ(frame->meta.kind(), wire::RESPONSE);
    EXPECT_EQ(frame->meta.call_id(), id);
    EXPECT_EQ(frame->meta.status_code(), 0) << DescribeFrame(*frame);
    EchoResponse resp;
    ASSERT_TRUE(resp.ParseFromString(frame->payload));
    EXPECT_EQ(resp.message(), "t") << "timeout_us " << timeout;
    ++id;
  }
}

TEST_F(EdgesTest, FrameLimitsTheHeaderCannotCarryAreRejected) {
  ServerOptions options;
  options.limits.max_message_bytes = size_t{5} << 30;
  Server server(options);
  absl::Status s = server.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "max_message_bytes 5368709120"))
      << s;

  ChannelOptions copts;
  copts.limits.max_meta_bytes = size_t{1} << 33;
  auto channel = Channel::Create("127.0.0.1:1", copts);
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(channel.status().message(),
                                "max_meta_bytes 8589934592"))
      << channel.status();
}

// A client that sends its requests and then shuts down its sending side
// (shutdown(SHUT_WR)) still gets every answer, including those whose
// handlers are still running; a stream still expecting client messages
// ends CANCELLED; then the server closes.
TEST_F(EdgesTest, HalfClosedClientStillGetsEveryAnswer) {
  StartServer(ServerOptions());
  auto client = RawClient::Connect(server_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  for (uint64_t id = 1; id <= 3; ++id) {
    // Answered 300 ms later, without blocking the loop.
    ASSERT_TRUE((*client)
                    ->Write(EncodeFrame(EchoRequestMeta(id),
                                        EchoPayload(absl::StrCat("m", id), 300)))
                    .ok());
  }
  wire::FrameMeta sink;
  sink.set_call_id(4);
  sink.set_kind(wire::REQUEST);
  sink.set_method(kSink);
  ASSERT_TRUE((*client)->Write(EncodeFrame(sink, "")).ok());
  ASSERT_TRUE(gate().AwaitStarted(1));  // The stream's handler runs.
  ASSERT_EQ(shutdown((*client)->fd(), SHUT_WR), 0);

  std::vector<bool> answered(5, false);
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Frame> frame = (*client)->ReadFrame(kWait);
    ASSERT_TRUE(frame.ok()) << "answer " << i << ": " << frame.status();
    ASSERT_EQ(frame->meta.kind(), wire::RESPONSE) << DescribeFrame(*frame);
    const uint64_t id = frame->meta.call_id();
    ASSERT_TRUE(id >= 1 && id <= 4) << DescribeFrame(*frame);
    answered[id] = true;
    if (id == 4) {
      EXPECT_EQ(frame->meta.status_code(),
                static_cast<int>(absl::StatusCode::kCancelled))
          << DescribeFrame(*frame);
      continue;
    }
    EXPECT_EQ(frame->meta.status_code(), 0) << DescribeFrame(*frame);
    EchoResponse resp;
    ASSERT_TRUE(resp.ParseFromString(frame->payload));
    EXPECT_EQ(resp.message(), absl::StrCat("m", id));
  }
  EXPECT_EQ(answered, std::vector<bool>({false, true, true, true, true}));
  EXPECT_TRUE((*client)->WaitForClose(kWait).ok());
}

// Empty MESSAGE frames cost credit too (16 bytes each): a client that
// floods a stream whose handler reads nothing runs out of its 64 KiB window
// after 4096 of them, and the call (only it) fails.
TEST_F(EdgesTest, EmptyMessagesCannotOverrunTheWindow) {
  StartServer(ServerOptions());
  auto client = RawClient::Connect(server_->port());
  ASSERT_TRUE(client.ok()) << client.status();
  wire::FrameMeta open;
  open.set_call_id(1);
  open.set_kind(wire::REQUEST);
  open.set_method(kSink);
  ASSERT_TRUE((*client)->Write(EncodeFrame(open, "")).ok());
  ASSERT_TRUE(gate().AwaitStarted(1));  // Reads nothing until released.
  wire::FrameMeta empty;
  empty.set_call_id(1);
  empty.set_kind(wire::MESSAGE);
  const std::string frame = EncodeFrame(empty, "");
  std::string flood;
  for (int i = 0; i < 5000; ++i) flood += frame;
  ASSERT_TRUE((*client)->Write(flood).ok());
  absl::StatusOr<Frame> answer = (*client)->ReadFrame(kWait);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->meta.kind(), wire::RESPONSE) << DescribeFrame(*answer);
  EXPECT_EQ(answer->meta.call_id(), 1u);
  EXPECT_EQ(answer->meta.status_code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted))
      << DescribeFrame(*answer);
  EXPECT_TRUE(absl::StrContains(answer->meta.status_message(),
                                "flow-control window exceeded"))
      << DescribeFrame(*answer);
  // The connection goes on.
  wire::FrameMeta echo = EchoRequestMeta(2);
  ASSERT_TRUE((*client)->Write(EncodeFrame(echo, EchoPayload("after"))).ok());
  absl::StatusOr<Frame> next = (*client)->ReadFrame(kWait);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->meta.call_id(), 2u) << DescribeFrame(*next);
  EXPECT_EQ(next->meta.status_code(), 0) << DescribeFrame(*next);
}

}  // namespace
}  // namespace bevrpc::testing
