// Server memory budgets driven to their bounds: the per-connection and
// server-wide byte budgets stop reading (and reading resumes, losing
// nothing), the worker queue refuses with RESOURCE_EXHAUSTED when full,
// RunAfter() timers are freed as they fire, and recycled calls do not keep
// large messages.
#include <malloc.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "tests/e2e/flow_control/flow_fixture.h"
#include "transport/event_loop.h"

namespace bevrpc::testing {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;
using echo::ExpandRequest;

class MemoryBudgetTest : public FlowFixture {};

constexpr size_t kMiB = 1 << 20;
// Frame header and meta of a request, on top of its payload.
constexpr size_t kFrameOverhead = 1024;

// The handler holds every call (and so its request bytes); with a 4 MiB
// connection budget the server reads at most one 1 MiB request past the
// budget, then stops reading until calls finish. Nothing is lost.
TEST_F(MemoryBudgetTest, ConnectionBudgetStopsReadingUntilCallsFinish) {
  ServerOptions options;
  options.max_connection_memory_bytes = 4 * kMiB;
  StartServer(options);
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);

  constexpr int kCalls = 16;
  Results results;
  std::vector<std::unique_ptr<EchoResponse>> responses;
  SendHeldCalls(*channel, kCalls, kMiB, results, responses);
  // Each request is a little over 1 MiB: the 4th takes the connection
  // over its budget and reading stops.
  ASSERT_TRUE(gate().AwaitStarted(4));
  // The first connection's other requests sit in its socket meanwhile.
  PingOnAnotherConnection();
  EXPECT_EQ(gate().started(), 4) << "reading went on over the budget";
  EXPECT_LE(server_->peak_memory_in_use(), 4 * (kMiB + kFrameOverhead));
  gate().ReleaseAll();
  ASSERT_TRUE(results.AwaitCount(kCalls));
  EXPECT_EQ(results.Count(absl::StatusCode::kOk), static_cast<size_t>(kCalls));
  EXPECT_EQ(gate().started(), kCalls);
  // The bound held for the whole run, answers (unsent output) included.
  EXPECT_LE(server_->peak_memory_in_use(),
            options.max_connection_memory_bytes + kMiB + kFrameOverhead);
}

// A connection paused for its budget reads nothing, PONGs included: its
// keepalive is suspended meanwhile, so a pause longer than keepalive_time
// + keepalive_timeout does not close it.
TEST_F(MemoryBudgetTest, PausedConnectionIsNotDeclaredDeadByKeepalive) {
  ServerOptions options;
  options.max_connection_memory_bytes = 2 * kMiB;
  options.keepalive_time = absl::Milliseconds(100);
  options.keepalive_timeout = absl::Milliseconds(100);
  StartServer(options);
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  constexpr int kCalls = 6;
  Results results;
  std::vector<std::unique_ptr<EchoResponse>> responses;
  SendHeldCalls(*channel, kCalls, kMiB, results, responses);
  ASSERT_TRUE(gate().AwaitStarted(2));  // Paused from here on.
  // The elapsed time is the condition under test: several keepalive
  // periods (100 ms + 100 ms) pass while the connection is paused.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(results.statuses().size(), 0u) << "a held call ended early";
  gate().ReleaseAll();
  ASSERT_TRUE(results.AwaitCount(kCalls));
  EXPECT_EQ(results.Count(absl::StatusCode::kOk), static_cast<size_t>(kCalls));
}

// The server-wide budget: four connections, none over its own (unlimited)
// budget, stop together once the server holds 4 MiB.
TEST_F(MemoryBudgetTest, ServerBudgetStopsEveryConnection) {
  ServerOptions options;
  options.max_connection_memory_bytes = 0;  // Unlimited.
  options.max_server_memory_bytes = 4 * kMiB;
  StartServer(options);
  constexpr int kChannels = 4;
  constexpr int kCallsEach = 6;
  std::vector<std::unique_ptr<Channel>> channels;
  Results results;
  std::vector<std::unique_ptr<EchoResponse>> responses;
  for (int c = 0; c < kChannels; ++c) {
    channels.push_back(NewChannel());
    ASSERT_NE(channels.back(), nullptr);
    SendHeldCalls(*channels.back(), kCallsEach, kMiB, results, responses);
  }
  ASSERT_TRUE(gate().AwaitStarted(4));
  // The stopped connections must not read on meanwhile.
  PingOnAnotherConnection();
  // Each connection may read one request past the server's limit.
  const size_t bound = 4 * kMiB + kChannels * (kMiB + kFrameOverhead);
  EXPECT_LE(server_->peak_memory_in_use(), bound);
  EXPECT_LE(gate().started(), 4 + kChannels);
  gate().ReleaseAll();
  ASSERT_TRUE(results.AwaitCount(kChannels * kCallsEach));
  EXPECT_EQ(results.Count(absl::StatusCode::kOk),
            static_cast<size_t>(kChannels * kCallsEach));
  EXPECT_LE(server_->peak_memory_in_use(), bound);
}

// With the only worker busy and max_queued_calls waiting, further sync
// calls fail at once with RESOURCE_EXHAUSTED (while the worker is still
// blocked), and the queued ones run once it is free.
TEST_F(MemoryBudgetTest, FullWorkerQueueRefusesAtOnce) {
  ServerOptions options;
  options.worker_threads = 1;
  options.max_queued_calls = 2;
  StartServer(options);
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  EchoRequest request;
  request.set_message("q");
  CallOptions call_options;
  call_options.timeout = kWait;
  Results accepted;
  std::vector<std::unique_ptr<EchoResponse>> responses;
  responses.push_back(std::make_unique<EchoResponse>());
  channel->CallAsync(kHoldSync, request, responses.back().get(), call_options,
                     accepted.Callback());
  ASSERT_TRUE(gate().AwaitStarted(1));  // The worker is taken.
  for (int i = 0; i < 2; ++i) {
    responses.push_back(std::make_unique<EchoResponse>());
    channel->CallAsync(kHoldSync, request, responses.back().get(),
                       call_options, accepted.Callback());
  }
  // Calls are handled in order on one connection: these three come after
  // the two queued ones.
  Results refused;
  for (int i = 0; i < 3; ++i) {
    responses.push_back(std::make_unique<EchoResponse>());
    channel->CallAsync(kHoldSync, request, responses.back().get(),
                       call_options, refused.Callback());
  }
  ASSERT_TRUE(refused.AwaitCount(3));
  EXPECT_FALSE(gate().released());
  for (const absl::Status& s : refused.statuses()) {
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "max_queued_calls 2")) << s;
  }
  EXPECT_EQ(accepted.statuses().size(), 0u);
  gate().ReleaseAll();
  ASSERT_TRUE(accepted.AwaitCount(3));
  EXPECT_EQ(accepted.Count(absl::StatusCode::kOk), 3u);
}

// Expand paces its messages with RunAfter(): each timer is freed when it
// fires, so a long stream holds one timer at a time, not one per message.
TEST_F(MemoryBudgetTest, RunAfterTimersAreFreedAsTheyFire) {
  StartServer(ServerOptions());
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  const size_t timers_before = transport::Timer::live_count();
  ExpandRequest request;
  request.set_count(200);
  request.set_size(16);
  request.set_interval_ms(1);
  auto stream = ClientStream<ExpandRequest, EchoResponse>::Open(
      *channel, "bevrpc.echo.Echo/Expand", MethodKind::kServerStreaming,
      &request);
  EchoResponse response;
  size_t received = 0, most_timers = 0;
  while (stream->Read(&response)) {
    ++received;
    most_timers = std::max(most_timers, transport::Timer::live_count());
  }
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(received, 200u);
  // A handful of fixed timers (connections, deadlines) besides the one of
  // the stream; before, this grew by one per message.
  EXPECT_LE(most_timers, timers_before + 10) << "timers kept per message";
}

// Sync streaming handlers run on their own threads: with the default 4
// workers, 8 idle sync bidi streams leave unary sync calls their workers.
TEST_F(MemoryBudgetTest, IdleSyncStreamsDoNotStarveUnaryCalls) {
  StartServer(ServerOptions());
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  std::vector<std::unique_ptr<ClientStream<EchoRequest, EchoResponse>>> streams;
  for (int i = 0; i < 8; ++i) {
    streams.push_back(ClientStream<EchoRequest, EchoResponse>::Open(
        *channel, kIdleBidi, MethodKind::kBidiStreaming));
  }
  ASSERT_TRUE(gate().AwaitStarted(8));
  gate().ReleaseAll();  // kHoldSync answers at once from now on.
  EchoRequest req;
  req.set_message("unary");
  EchoResponse resp;
  CallOptions options;
  options.timeout = absl::Seconds(10);  // Starved, it would wait forever.
  absl::Status s = channel->Call(kHoldSync, req, &resp, options);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(resp.message(), "unary");
  // The streams still work.
  EchoRequest ping;
  ping.set_message("still here");
  ASSERT_TRUE(streams[7]->WriteBlocking(ping).ok());
  ASSERT_TRUE(streams[7]->Read(&resp));
  EXPECT_EQ(resp.message(), "still here");
  for (auto& stream : streams) {
    stream->CloseSend();
    EXPECT_TRUE(stream->Finish().ok());
  }
}

// Beyond max_stream_threads, a sync stream fails at once with
// RESOURCE_EXHAUSTED; unary calls are unaffected.
TEST_F(MemoryBudgetTest, SyncStreamsBeyondTheirThreadsAreRefused) {
  ServerOptions options;
  options.max_stream_threads = 2;
  StartServer(options);
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  std::vector<std::unique_ptr<ClientStream<EchoRequest, EchoResponse>>> streams;
  for (int i = 0; i < 2; ++i) {
    streams.push_back(ClientStream<EchoRequest, EchoResponse>::Open(
        *channel, kIdleBidi, MethodKind::kBidiStreaming));
  }
  ASSERT_TRUE(gate().AwaitStarted(2));
  auto third = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel, kIdleBidi, MethodKind::kBidiStreaming);
  absl::Status refused = third->Finish();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "threads are busy"))
      << refused;
  EchoRequest req;
  req.set_message("x");
  EchoResponse resp;
  ASSERT_TRUE(channel->Call(kEcho, req, &resp).ok());
  for (auto& stream : streams) {
    stream->CloseSend();
    EXPECT_TRUE(stream->Finish().ok());
  }
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
size_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// A burst of 4 MiB calls on 16 connections, then silence: the connections'
// recycled calls must not keep the large messages (before: ~8 MiB per
// connection, request and response, until the connection closed).
TEST_F(MemoryBudgetTest, RecycledCallsDoNotKeepLargeMessages) {
  StartServer(ServerOptions());
  constexpr int kConnections = 16;
  std::vector<std::unique_ptr<Channel>> channels;
  for (int i = 0; i < kConnections; ++i) {
    channels.push_back(NewChannel());
    ASSERT_NE(channels.back(), nullptr);
    EchoRequest small;
    small.set_message("warm");
    EchoResponse r;
    ASSERT_TRUE(channels.back()->Call(kEcho, small, &r).ok());
  }
  const size_t before = HeapInUse();
  {
    EchoRequest big;
    big.set_message(std::string(4 * kMiB - 1024, 'L'));
    for (auto& channel : channels) {
      EchoResponse r;
      ASSERT_TRUE(channel->Call(kEcho, big, &r).ok());
    }
  }
  // A small call on each connection afterwards reuses the recycled call.
  for (auto& channel : channels) {
    EchoRequest small;
    small.set_message("after");
    EchoResponse r;
    ASSERT_TRUE(channel->Call(kEcho, small, &r).ok());
  }
  const size_t after = HeapInUse();
  const size_t grown = after > before ? after - before : 0;
  EXPECT_LT(grown, 16 * kMiB) << "heap grew by " << grown << " bytes over "
                              << kConnections << " idle connections";
}
#endif

}  // namespace
}  // namespace bevrpc::testing
