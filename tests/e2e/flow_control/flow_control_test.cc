// Flow control end to end (docs/protocol.md, "Flow control"): large
// concurrent calls never deadlock, the channel admits requests against its
// unsent-bytes budget (waiting or failing as configured), client streams
// follow connection writability, and stream windows above 64 KiB are
// honoured.
#include <algorithm>
#include <functional>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "tests/e2e/flow_control/flow_fixture.h"

namespace bevrpc::testing {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

class FlowControlTest : public FlowFixture {
 protected:
  static constexpr size_t kChannelBudget = 4 << 20;

  // A server that stops reading once it holds a 1 MiB call (its connection
  // budget is 1 MiB and kHold keeps every call), and a channel to it with a
  // 4 MiB unsent-request budget that waits or fails as `wait` says.
  std::unique_ptr<Channel> ChannelToAStoppedServer(bool wait) {
    ServerOptions options;
    options.max_connection_memory_bytes = 1 << 20;
    StartServer(options);
    ChannelOptions copts;
    copts.max_unsent_request_bytes = kChannelBudget;
    copts.wait_for_request_budget = wait;
    return NewChannel(copts);
  }
};

// Closed loop of `total` echo calls of `payload` bytes, `in_flight` at a
// time, on `channel`. Returns the statuses.
std::vector<absl::Status> RunClosedLoop(Channel& channel, size_t payload,
                                        int in_flight, int total) {
  struct State {
    Channel* channel;
    EchoRequest request;
    std::atomic<int> issued{0};
    Results results;
    std::vector<std::unique_ptr<EchoResponse>> responses;
  };
  auto state = std::make_shared<State>();
  state->channel = &channel;
  state->request.set_message(std::string(payload, 'x'));
  for (int i = 0; i < total; ++i) {
    state->responses.push_back(std::make_unique<EchoResponse>());
  }
  // Each completion starts the next call (from the channel's loop).
  std::function<void()> issue = [state, total, &issue] {
    int i = state->issued.fetch_add(1);
    if (i >= total) return;
    CallOptions options;
    options.timeout = kWait;
    auto record = state->results.Callback();
    state->channel->CallAsync(
        kEcho, state->request, state->responses[i].get(), options,
        [record = std::move(record), &issue](absl::Status s) mutable {
          // The next call first: once the last result is recorded the
          // test may return, and `issue` with it.
          issue();
          record(std::move(s));
        });
  };
  for (int i = 0; i < in_flight; ++i) issue();
  EXPECT_TRUE(state->results.AwaitCount(total))
      << "only " << state->results.statuses().size() << " of " << total
      << " calls finished";
  for (int i = 0; i < total; ++i) {
    EXPECT_EQ(state->responses[i]->message().size(), payload) << "call " << i;
  }
  return state->results.statuses();
}

// The old deadlock: with several multi-MiB calls in flight on one
// connection, both peers stopped reading because of their own queued
// output. Now every call completes.
TEST_F(FlowControlTest, ManyLargeCallsOnOneConnectionAllComplete) {
  StartServer(ServerOptions());
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  for (const absl::Status& s :
       RunClosedLoop(*channel, 3'000'000, /*in_flight=*/32, /*total=*/64)) {
    EXPECT_TRUE(s.ok()) << s;
  }
  // The channel's budget admitted them (64 MiB > 32 x 3 MB), and gave every
  // byte back.
  EXPECT_EQ(channel->unsent_request_bytes(), 0u);
}

TEST_F(FlowControlTest, ManyLargeCallsOnSeveralConnectionsAllComplete) {
  ServerOptions options;
  options.io_threads = 2;
  StartServer(options);
  ChannelOptions copts;
  copts.num_connections = 4;
  copts.io_threads = 2;
  auto channel = NewChannel(copts);
  ASSERT_NE(channel, nullptr);
  for (const absl::Status& s :
       RunClosedLoop(*channel, 3'000'000, /*in_flight=*/64, /*total=*/96)) {
    EXPECT_TRUE(s.ok()) << s;
  }
  // Never more than the server-wide default budget plus one message per
  // connection (each may read one more while at the limit).
  EXPECT_LE(server_->peak_memory_in_use(),
            ServerOptions().max_server_memory_bytes + 4 * 3'100'000);
}

// With a server that stops reading (its handler holds every call and its
// connection budget is 1 MiB), requests back up into the channel, whose
// budget refuses the excess at once when told not to wait.
TEST_F(FlowControlTest, ChannelBudgetRefusesWithResourceExhausted) {
  auto channel = ChannelToAStoppedServer(/*wait=*/false);
  ASSERT_NE(channel, nullptr);

  constexpr int kCalls = 40;  // 40 MiB: more than kernel buffers + budgets.
  Results results;
  std::vector<std::unique_ptr<EchoResponse>> responses;
  SendHeldCalls(*channel, kCalls, 1 << 20, results, responses);
  ASSERT_TRUE(gate().AwaitStarted(1));
  // The refusals come without any call finishing on the server.
  ASSERT_TRUE(results.AwaitCount(1)) << "no call was refused";
  const size_t refused = results.Count(absl::StatusCode::kResourceExhausted);
  EXPECT_GE(refused, 1u);
  for (const absl::Status& s : results.statuses()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "max_unsent_request_bytes"))
        << s;
  }
  gate().ReleaseAll();
  ASSERT_TRUE(results.AwaitCount(kCalls));
  const size_t ok = results.Count(absl::StatusCode::kOk);
  EXPECT_EQ(ok + results.Count(absl::StatusCode::kResourceExhausted),
            static_cast<size_t>(kCalls));
  EXPECT_GE(ok, 1u);
  EXPECT_LE(channel->peak_unsent_request_bytes(), kChannelBudget);
  EXPECT_EQ(channel->unsent_request_bytes(), 0u);
}

// The same with the default (wait): calls queue in the channel within their
// deadline; one whose deadline passes while queued fails alone with
// DEADLINE_EXCEEDED, and every other call completes once the server reads.
TEST_F(FlowControlTest, ChannelBudgetMakesCallsWaitWithinTheirDeadline) {
  auto channel = ChannelToAStoppedServer(/*wait=*/true);
  ASSERT_NE(channel, nullptr);

  constexpr int kCalls = 40;
  Results held;
  std::vector<std::unique_ptr<EchoResponse>> responses;
  SendHeldCalls(*channel, kCalls, 1 << 20, held, responses);
  ASSERT_TRUE(gate().AwaitStarted(1));
  Results late;
  std::vector<std::unique_ptr<EchoResponse>> late_responses;
  SendHeldCalls(*channel, 1, 1 << 20, late, late_responses,
                absl::Milliseconds(300));
  ASSERT_TRUE(late.AwaitCount(1));
  EXPECT_EQ(late.statuses()[0].code(), absl::StatusCode::kDeadlineExceeded)
      << late.statuses()[0];
  EXPECT_EQ(held.statuses().size(), 0u) << "a held call ended early";

  gate().ReleaseAll();
  ASSERT_TRUE(held.AwaitCount(kCalls));
  EXPECT_EQ(held.Count(absl::StatusCode::kOk), static_cast<size_t>(kCalls));
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(responses[i]->message(), absl::StrCat(1 << 20)) << i;
  }
  // One request beyond the budget at most (it is admitted when the bytes
  // before it fit).
  EXPECT_LE(channel->peak_unsent_request_bytes(), kChannelBudget);
  EXPECT_EQ(channel->unsent_request_bytes(), 0u);
}

// A client stream stops accepting writes when its connection is not
// writable (the server stopped reading: its handler reads nothing and its
// connection budget is small), long before credit or the stream's own
// buffer would stop it, and OnWritable() fires once the server reads again.
TEST_F(FlowControlTest, ClientStreamFollowsConnectionWritability) {
  ServerOptions options;
  options.stream_window_bytes = 32 << 20;
  options.max_connection_memory_bytes = 1 << 20;
  StartServer(options);
  ChannelOptions copts;
  copts.stream_write_buffer_bytes = 64 << 20;
  auto channel = NewChannel(copts);
  ASSERT_NE(channel, nullptr);

  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel, kSink, MethodKind::kClientStreaming);
  ASSERT_TRUE(gate().AwaitStarted(1));
  EchoRequest msg;
  msg.set_message(std::string(64 << 10, 's'));
  size_t written = 0;
  bool refused = false;
  // Write() is non-blocking; until the connection backs up it accepts.
  for (int i = 0; i < 1024 && !refused; ++i) {
    if (stream->Write(msg)) {
      written += msg.message().size();
    } else {
      refused = true;
    }
    // Let the loop send what was queued, so the connection really backs up
    // (bounded: each write is followed by at most a short wait).
    if (!refused && i % 16 == 15) {
      // Shared: a callback left registered may run after this scope.
      auto sent = std::make_shared<Notification>();
      stream->OnWritable([sent] { sent->Notify(); });
      if (!sent->WaitForNotificationWithTimeout(absl::Seconds(2))) {
        refused = true;  // Not writable any more: what we are testing.
      }
    }
  }
  ASSERT_TRUE(refused) << "Write() never refused after " << written
                       << " bytes";
  // Refused by writability: neither the 32 MiB credit nor the 64 MiB
  // stream buffer was the limit.
  EXPECT_LT(written, size_t{32} << 20);
  EXPECT_FALSE(stream->Write(msg));

  Notification writable;
  stream->OnWritable([&] { writable.Notify(); });
  gate().ReleaseAll();  // The handler reads; the server reads again.
  ASSERT_TRUE(writable.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(stream->WriteBlocking(msg).ok());
  written += msg.message().size();
  stream->CloseSend();
  EchoResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(response.message(),
            absl::StrCat(written / msg.message().size(), " messages, ",
                         written, " bytes"));
}

// ServerOptions::stream_window_bytes above 64 KiB: the client may send the
// whole window before the handler reads anything.
class StreamWindowTest : public FlowFixture,
                         public ::testing::WithParamInterface<uint32_t> {};

TEST_P(StreamWindowTest, ClientMaySendTheWholeWindowUnread) {
  const uint32_t window = GetParam();
  ServerOptions options;
  options.stream_window_bytes = window;
  options.max_connection_memory_bytes = size_t{2} * window + (1 << 20);
  StartServer(options);
  ChannelOptions copts;
  copts.stream_write_buffer_bytes = size_t{2} * window;
  auto channel = NewChannel(copts);
  ASSERT_NE(channel, nullptr);

  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel, kSink, MethodKind::kClientStreaming);
  ASSERT_TRUE(gate().AwaitStarted(1));
  EchoRequest msg;
  constexpr size_t kMessage = 64 << 10;
  msg.set_message(std::string(kMessage, 'w'));
  const size_t messages = window / kMessage;
  for (size_t i = 0; i < messages; ++i) {
    ASSERT_TRUE(stream->WriteBlocking(msg).ok()) << i;
  }
  // Wait until the server holds the whole window, unread.
  absl::Time deadline = absl::Now() + kWait;
  while (server_->memory_in_use() < window && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));  // Polling a counter, bounded.
  }
  ASSERT_GE(server_->memory_in_use(), window);
  gate().ReleaseAll();
  stream->CloseSend();
  EchoResponse response;
  ASSERT_TRUE(stream->Read(&response));
  absl::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(response.message(), absl::StrCat(messages, " messages, ",
                                             messages * kMessage, " bytes"));
}

INSTANTIATE_TEST_SUITE_P(Windows, StreamWindowTest,
                         ::testing::Values(uint32_t{1} << 20,
                                           uint32_t{16} << 20));

}  // namespace
}  // namespace bevrpc::testing
