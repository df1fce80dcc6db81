// End-to-end streaming through the real Server and ClientStream over
// loopback TCP: each shape, headers and trailers, both flavours, per-call
// flow control (a producer can never run ahead of a reader by more than a
// window and a buffer), a stalled stream not blocking other calls on its
// connection, cancellation, and stream faults from a raw client.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.bevrpc.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/e2e/streaming_test.pb.h"
#include "tests/testing/raw_client.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using test::Chunk;
using test::ExpandRequest;

constexpr char kExpand[] = "bevrpc.test.Streams/Expand";
constexpr char kExpandSync[] = "bevrpc.test.Streams/ExpandSync";
// Client streaming: echo's Collect (concatenates the messages).
constexpr const char* kCollect = echo::Echo::kCollectMethod;
constexpr char kChat[] = "bevrpc.test.Streams/Chat";
constexpr char kChatSync[] = "bevrpc.test.Streams/ChatSync";
// Client streaming that never reads: it holds its call until cancelled.
constexpr char kHold[] = "bevrpc.test.Streams/Hold";

// What the handlers report to the test.
struct Probe {
  std::atomic<int64_t> accepted{0};  // Expand messages Write() took.
  std::atomic<int> cancelled{0};
  Notification cancel_seen;  // With cancelled.
  // True while an Expand handler waits on OnWritable after a refused Write.
  std::atomic<bool> waiting{false};
  Notification expand_done;
};

// Callback-flavour Expand: writes while the stream accepts, then waits for
// OnWritable; stops when the call is cancelled.
class Expander : public std::enable_shared_from_this<Expander> {
 public:
  Expander(ServerContext& ctx, const ExpandRequest& req,
           ServerWriter<Chunk> writer, Completion done, Probe* probe)
      : ctx_(ctx),
        left_(req.count()),
        writer_(std::move(writer)),
        done_(std::move(done)),
        probe_(probe) {
    chunk_.set_data(std::string(req.size(), 'x'));
  }

  void Run() {
    while (left_ > 0) {
      if (ctx_.IsCancelled()) {
        probe_->cancelled.fetch_add(1);
        probe_->cancel_seen.Notify();
        return;  // done_ is dropped: the call has ended anyway.
      }
      if (!writer_.Write(chunk_)) {
        probe_->waiting.store(true);
        writer_.OnWritable([self = shared_from_this()] {
          self->probe_->waiting.store(false);
          self->Run();
        });
        return;
      }
      --left_;
      probe_->accepted.fetch_add(1);
    }
    ctx_.AddTrailer("sent", "all");
    std::move(done_).Finish(absl::OkStatus());
    probe_->expand_done.Notify();
  }

 private:
  ServerContext& ctx_;
  uint64_t left_;
  ServerWriter<Chunk> writer_;
  Completion done_;
  Probe* probe_;
  Chunk chunk_;
};

class StreamingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Probe* probe = &probe_;
    ASSERT_TRUE(server_
                    .RegisterMethod(
                        ServerStreamingCallbackMethod<ExpandRequest, Chunk>(
                            kExpand,
                            [probe](ServerContext& ctx,
                                    const ExpandRequest& req,
                                    ServerWriter<Chunk> writer,
                                    Completion done) {
                              ctx.AddHeader("shape", "server-streaming");
                              auto tag = ctx.metadata().find("x-tag");
                              if (tag != ctx.metadata().end()) {
                                ctx.AddHeader("x-tag", tag->second);
                              }
                              std::make_shared<Expander>(ctx, req,
                                                         std::move(writer),
                                                         std::move(done), probe)
                                  ->Run();
                            }))
                    .ok());
    ASSERT_TRUE(
        server_
            .RegisterMethod(ServerStreamingSyncMethod<ExpandRequest, Chunk>(
                kExpandSync,
                [](ServerContext& ctx, const ExpandRequest& req,
                   ServerWriter<Chunk>& writer) {
                  Chunk chunk;
                  chunk.set_data(std::string(req.size(), 'y'));
                  for (uint64_t i = 0; i < req.count(); ++i) {
                    absl::Status s = writer.WriteBlocking(chunk);
                    if (!s.ok()) return s;
                  }
                  return absl::OkStatus();
                }))
            .ok());
    ASSERT_TRUE(
        server_
            .RegisterMethod(BidiStreamingCallbackMethod<echo::EchoRequest,
                                                        echo::EchoResponse>(
                kChat,
                [](ServerContext& ctx,
                   ServerReaderWriter<echo::EchoRequest, echo::EchoResponse>
                       stream,
                   Completion done) {
                  // Echoes on the worker pool with blocking calls.
                  ctx.RunOnWorkerPool([stream, done = std::move(done)]() mutable {
                    echo::EchoRequest req;
                    echo::EchoResponse resp;
                    while (stream.Read(&req)) {
                      resp.set_message(req.message());
                      absl::Status s = stream.WriteBlocking(resp);
                      if (!s.ok()) {
                        std::move(done).Finish(s);
                        return;
                      }
                    }
                    std::move(done).Finish(absl::OkStatus());
                  });
                }))
            .ok());
    ASSERT_TRUE(
        server_
            .RegisterMethod(BidiStreamingSyncMethod<echo::EchoRequest,
                                                    echo::EchoResponse>(
                kChatSync,
                [](ServerContext& ctx,
                   ServerReaderWriter<echo::EchoRequest, echo::EchoResponse>&
                       stream) {
                  echo::EchoRequest req;
                  echo::EchoResponse resp;
                  while (stream.Read(&req)) {
                    resp.set_message(absl::StrCat("re: ", req.message()));
                    absl::Status s = stream.WriteBlocking(resp);
                    if (!s.ok()) return s;
                  }
                  return absl::OkStatus();
                }))
            .ok());
    ASSERT_TRUE(
        server_
            .RegisterMethod(
                ClientStreamingCallbackMethod<echo::EchoRequest,
                                              echo::EchoResponse>(
                    kHold,
                    [](ServerContext& ctx,
                       ServerReader<echo::EchoRequest> reader,
                       echo::EchoResponse*, Completion done) {
                      auto held = std::make_shared<Completion>(std::move(done));
                      ctx.OnCancel([held, reader] {});
                    }))
            .ok());
    ASSERT_TRUE(echo::RegisterEchoService(server_).ok());
    ASSERT_TRUE(server_.Start().ok());
    auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server_.port()));
    ASSERT_TRUE(channel.ok());
    channel_ = *std::move(channel);
  }

  void TearDown() override {
    channel_.reset();
    server_.Shutdown(absl::Seconds(1));
  }

  std::unique_ptr<ClientStream<ExpandRequest, Chunk>> Expand(
      const char* method, uint64_t count, uint32_t size) {
    ExpandRequest req;
    req.set_count(count);
    req.set_size(size);
    return ClientStream<ExpandRequest, Chunk>::Open(
        *channel_, method, MethodKind::kServerStreaming, &req);
  }

  // Waits until the Expand handler is stalled: waiting on OnWritable, with
  // nothing accepted for 300 ms; returns the messages accepted. A refused
  // Write() alone does not mark the end: the stream moves again as its
  // queue drains into the connection (while credit lasts) or the
  // connection into the kernel's socket buffers, and nothing signals that
  // those are full. So this proves a negative by waiting; every bound
  // checked on the result holds however long it waits. Fails if the
  // handler finishes instead, or nothing settles within 30 s.
  int64_t WaitUntilStalled() {
    const absl::Time until = absl::Now() + absl::Seconds(30);
    int64_t last = probe_.accepted.load();
    absl::Time quiet_since = absl::Now();
    while (absl::Now() < until && !probe_.expand_done.HasBeenNotified()) {
      absl::SleepFor(absl::Milliseconds(10));
      const int64_t now = probe_.accepted.load();
      if (now != last || !probe_.waiting.load()) {
        last = now;
        quiet_since = absl::Now();
      } else if (absl::Now() - quiet_since >= absl::Milliseconds(300)) {
        return last;
      }
    }
    ADD_FAILURE() << "the stream never stalled: " << last << " accepted"
                  << (probe_.expand_done.HasBeenNotified() ? ", all sent" : "");
    return last;
  }

  Probe probe_;
  Server server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(StreamingTest, ServerStreamDeliversEveryMessageHeadersAndTrailers) {
  auto stream = Expand(kExpand, 5000, 100);
  Chunk chunk;
  int n = 0;
  while (stream->Read(&chunk)) {
    ASSERT_EQ(chunk.data(), std::string(100, 'x'));
    ++n;
  }
  EXPECT_EQ(n, 5000);
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(stream->headers().at("shape"), "server-streaming");
  EXPECT_EQ(stream->trailers().at("sent"), "all");
}

TEST_F(StreamingTest, RequestHeadersReachAStreamHandler) {
  ExpandRequest req;
  req.set_count(1);
  req.set_size(1);
  CallOptions options;
  options.metadata["x-tag"] = "blue";
  auto stream = ClientStream<ExpandRequest, Chunk>::Open(
      *channel_, kExpand, MethodKind::kServerStreaming, &req, options);
  Chunk chunk;
  while (stream->Read(&chunk)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(stream->headers().at("x-tag"), "blue");
}

TEST_F(StreamingTest, SyncServerStreamWithBlockingWrites) {
  auto stream = Expand(kExpandSync, 2000, 1000);  // 2 MB through 64 KiB windows.
  Chunk chunk;
  int n = 0;
  while (stream->Read(&chunk)) ++n;
  EXPECT_EQ(n, 2000);
  EXPECT_TRUE(stream->Finish().ok()) << stream->Finish();
}

TEST_F(StreamingTest, ClientStreamIsCollected) {
  auto stream = ClientStream<echo::EchoRequest, echo::EchoResponse>::Open(
      *channel_, kCollect, MethodKind::kClientStreaming);
  echo::EchoRequest req;
  std::string want;
  for (int i = 0; i < 3000; ++i) {  // ~30 KB... and past a window below.
    req.set_message(absl::StrCat(i, ","));
    want += req.message();
    ASSERT_TRUE(stream->WriteBlocking(req).ok());
  }
  req.set_message(std::string(100000, 'z'));  // Beyond the first window.
  want += req.message();
  ASSERT_TRUE(stream->WriteBlocking(req).ok());
  stream->CloseSend();
  echo::EchoResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.message(), want);
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(StreamingTest, BidiEchoesEachMessageBothFlavours) {
  for (const char* method : {kChat, kChatSync}) {
    auto stream = ClientStream<echo::EchoRequest, echo::EchoResponse>::Open(
        *channel_, method, MethodKind::kBidiStreaming);
    std::thread writer([&] {
      echo::EchoRequest req;
      for (int i = 0; i < 2000; ++i) {
        req.set_message(absl::StrCat("m", i));
        ASSERT_TRUE(stream->WriteBlocking(req).ok());
      }
      stream->CloseSend();
    });
    echo::EchoResponse resp;
    int n = 0;
    const std::string prefix = method == kChat ? "" : "re: ";
    while (stream->Read(&resp)) {
      ASSERT_EQ(resp.message(), absl::StrCat(prefix, "m", n)) << method;
      ++n;
    }
    writer.join();
    EXPECT_EQ(n, 2000) << method;
    EXPECT_TRUE(stream->Finish().ok()) << method;
  }
}

// The echo service's streaming methods through the generated stub.
TEST_F(StreamingTest, EchoExpandCollectChatThroughTheGeneratedStub) {
  echo::Echo::Stub stub(channel_.get());

  echo::ExpandRequest expand;
  expand.set_count(300);
  expand.set_size(1000);
  auto feed = stub.Expand(expand);
  echo::EchoResponse resp;
  int n = 0;
  while (feed->Read(&resp)) {
    ASSERT_EQ(resp.message().size(), 1000u);
    ++n;
  }
  EXPECT_EQ(n, 300);
  EXPECT_TRUE(feed->Finish().ok());

  auto upload = stub.Collect();
  echo::EchoRequest req;
  for (const char* part : {"a", "bc", "def"}) {
    req.set_message(part);
    ASSERT_TRUE(upload->WriteBlocking(req).ok());
  }
  upload->CloseSend();
  ASSERT_TRUE(upload->Read(&resp));
  EXPECT_EQ(resp.message(), "abcdef");
  EXPECT_TRUE(upload->Finish().ok());

  auto chat = stub.Chat();
  for (int i = 0; i < 100; ++i) {
    req.set_message(absl::StrCat("hi ", i));
    ASSERT_TRUE(chat->WriteBlocking(req).ok());
    ASSERT_TRUE(chat->Read(&resp));
    EXPECT_EQ(resp.message(), req.message());
  }
  chat->CloseSend();
  EXPECT_FALSE(chat->Read(&resp));
  EXPECT_TRUE(chat->Finish().ok());
}

TEST_F(StreamingTest, EchoExpandWithIntervalAndOversizedRequest) {
  echo::Echo::Stub stub(channel_.get());
  echo::ExpandRequest expand;
  expand.set_count(5);
  expand.set_size(10);
  expand.set_interval_ms(20);
  const absl::Time start = absl::Now();
  auto feed = stub.Expand(expand);
  echo::EchoResponse resp;
  int n = 0;
  while (feed->Read(&resp)) ++n;
  EXPECT_EQ(n, 5);
  // 4 pauses of 20 ms (loop timers may fire a little early by the wall
  // clock; without the pauses this takes about 1 ms).
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(60));
  EXPECT_TRUE(feed->Finish().ok());

  expand.set_size(5 << 20);
  auto bad = stub.Expand(expand);
  EXPECT_FALSE(bad->Read(&resp));
  EXPECT_EQ(bad->Finish().code(), absl::StatusCode::kInvalidArgument);
}

// Graceful drain: a stream that started before Shutdown() finishes within
// the grace period, untouched; new calls are refused.
TEST_F(StreamingTest, ShutdownLetsAnOpenStreamFinishWithinTheGrace) {
  echo::Echo::Stub stub(channel_.get());
  echo::ExpandRequest expand;
  expand.set_count(8);
  expand.set_size(10);
  expand.set_interval_ms(50);  // About 350 ms in all.
  auto feed = stub.Expand(expand);
  echo::EchoResponse resp;
  ASSERT_TRUE(feed->Read(&resp));  // Open and dispatched.
  std::thread stopper([this] { server_.Shutdown(absl::Seconds(5)); });
  int n = 1;
  while (feed->Read(&resp)) ++n;
  EXPECT_EQ(n, 8);
  EXPECT_TRUE(feed->Finish().ok()) << feed->Finish();
  stopper.join();
  // The server is gone now: a new call fails, it does not hang.
  echo::EchoRequest req;
  CallOptions options;
  options.timeout = absl::Seconds(2);
  absl::StatusOr<echo::EchoResponse> late = stub.Echo(req, options);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable)
      << late.status();
}

// A stream still open when the grace period runs out is ended with
// UNAVAILABLE, and its handler sees the cancellation.
TEST_F(StreamingTest, ShutdownEndsStreamsThatOutliveTheGrace) {
  auto stream = Expand(kExpand, 1 << 20, 1024);  // Stalls on credit.
  WaitUntilStalled();
  server_.Shutdown(absl::Milliseconds(300));
  Chunk chunk;
  while (stream->Read(&chunk)) {
  }
  EXPECT_EQ(stream->Finish(), absl::UnavailableError(
                                  "server shut down before the call finished"));
  ASSERT_TRUE(probe_.cancel_seen.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(probe_.cancelled.load(), 1);
}

// Stream messages over max_message_bytes fail their call, on either side,
// whether written or received; the connection goes on.
TEST_F(StreamingTest, OversizedStreamMessagesFailTheirCallOnly) {
  echo::Echo::Stub stub(channel_.get());
  echo::EchoResponse resp;
  // The server refuses to write one (4 MiB of text plus its field tag).
  echo::ExpandRequest expand;
  expand.set_count(1);
  expand.set_size(4 << 20);
  auto feed = stub.Expand(expand);
  EXPECT_FALSE(feed->Read(&resp));
  absl::Status s = feed->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("response message of"), std::string::npos) << s;

  // A client with a smaller limit refuses to receive one, and to send one.
  ChannelOptions small;
  small.limits.max_message_bytes = 1000;
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server_.port()),
                                 small);
  ASSERT_TRUE(channel.ok());
  echo::Echo::Stub small_stub(channel->get());
  expand.set_size(2000);
  auto big = small_stub.Expand(expand);
  EXPECT_FALSE(big->Read(&resp));
  s = big->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("stream message of"), std::string::npos) << s;
  auto upload = small_stub.Collect();
  echo::EchoRequest req;
  req.set_message(std::string(2000, 'u'));
  EXPECT_EQ(upload->WriteBlocking(req).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(upload->Finish().code(), absl::StatusCode::kResourceExhausted);
  // The same connection still serves.
  req.set_message("fine");
  absl::StatusOr<echo::EchoResponse> ok = small_stub.Echo(req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->message(), "fine");
}

// The producer may run ahead of a reader that reads nothing by at most the
// client's window plus the server's per-call buffer (plus one message):
// this fails if Write() ignored backpressure.
TEST_F(StreamingTest, ProducerStopsAtTheWindowWhenTheClientDoesNotRead) {
  constexpr int kSize = 1024;
  auto stream = Expand(kExpand, 4096, kSize);  // 4 MiB if unbounded.
  const int64_t accepted = WaitUntilStalled();
  // The client's window (credit) plus the server's per-call queue.
  const int64_t bound = (ChannelOptions().stream_window_bytes +
                         ServerOptions().stream_write_buffer_bytes) /
                            kSize +
                        2;
  EXPECT_GT(accepted, 0);
  EXPECT_LE(accepted, bound);
  // A unary call on the same connection is not blocked by the stall.
  echo::EchoRequest req;
  req.set_message("still here");
  echo::EchoResponse resp;
  CallOptions options;
  options.timeout = absl::Seconds(5);
  EXPECT_TRUE(channel_->Call(echo::kEchoMethod, req, &resp, options).ok());
  EXPECT_EQ(probe_.accepted.load(), accepted);  // Still stalled.
  // Reading resumes the stream to the end.
  Chunk chunk;
  int n = 0;
  while (stream->Read(&chunk)) ++n;
  EXPECT_EQ(n, 4096);
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(StreamingTest, ClientCancelReachesTheHandler) {
  auto stream = Expand(kExpand, 1 << 20, 1024);  // Stalls on credit.
  WaitUntilStalled();
  stream->Cancel();
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kCancelled);
  // The handler was waiting on OnWritable: the end wakes it.
  ASSERT_TRUE(probe_.cancel_seen.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(probe_.cancelled.load(), 1);
}

TEST_F(StreamingTest, DeadlineEndsAStream) {
  ExpandRequest req;
  req.set_count(1 << 20);
  req.set_size(1024);
  CallOptions options;
  options.timeout = absl::Milliseconds(200);
  auto stream = ClientStream<ExpandRequest, Chunk>::Open(
      *channel_, kExpand, MethodKind::kServerStreaming, &req, options);
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kDeadlineExceeded);
}

// Raw frames against the server's stream rules.
class StreamFaultTest : public StreamingTest {
 protected:
  std::unique_ptr<testing::RawClient> Connect() {
    auto raw = testing::RawClient::Connect(server_.port());
    EXPECT_TRUE(raw.ok());
    return raw.ok() ? *std::move(raw) : nullptr;
  }
  static std::string Frame(uint64_t id, wire::FrameKind kind,
                           absl::string_view payload = {},
                           const char* method = nullptr) {
    wire::FrameMeta meta;
    meta.set_call_id(id);
    meta.set_kind(kind);
    if (method != nullptr) meta.set_method(method);
    return testing::EncodeFrame(meta, payload);
  }
  // Reads frames until the RESPONSE of `id`.
  static wire::FrameMeta ResponseOf(testing::RawClient& raw, uint64_t id) {
    while (true) {
      absl::StatusOr<testing::Frame> f = raw.ReadFrame(absl::Seconds(5));
      if (!f.ok()) {
        ADD_FAILURE() << f.status();
        return {};
      }
      if (f->meta.kind() == wire::RESPONSE && f->meta.call_id() == id) {
        return f->meta;
      }
    }
  }
};

TEST_F(StreamFaultTest, MessageBeyondTheCreditFailsTheCall) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  echo::EchoRequest req;
  req.set_message(std::string(40000, 'a'));
  std::string bytes = req.SerializeAsString();
  // 64 KiB of credit and a handler that reads nothing: the second message
  // uses the credit up (it may go negative), the third has none left.
  ASSERT_TRUE(raw->Write(Frame(1, wire::REQUEST, {}, kHold) +
                         Frame(1, wire::MESSAGE, bytes) +
                         Frame(1, wire::MESSAGE, bytes) +
                         Frame(1, wire::MESSAGE, bytes))
                  .ok());
  wire::FrameMeta resp = ResponseOf(*raw, 1);
  EXPECT_EQ(resp.status_code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(resp.status_message().find("flow-control window"), std::string::npos)
      << resp.status_message();
}

// The frames go in one small write, which the server reads and handles in
// one go: ChatSync's own answer (it ends when the client half-closes) is
// posted to the loop from its worker and can only come after the second
// HALF_CLOSE has failed the call.
TEST_F(StreamFaultTest, HalfCloseTwiceFailsTheCall) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->Write(Frame(1, wire::REQUEST, {}, kChatSync) +
                         Frame(1, wire::HALF_CLOSE) +
                         Frame(1, wire::HALF_CLOSE))
                  .ok());
  wire::FrameMeta resp = ResponseOf(*raw, 1);
  EXPECT_EQ(resp.status_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(resp.status_message(), "HALF_CLOSE frame twice on call 1");
  // The connection goes on. Collect answers on the loop as the first
  // HALF_CLOSE arrives, so the second crosses the call's end and is
  // dropped: the call succeeds.
  ASSERT_TRUE(raw->Write(Frame(3, wire::REQUEST, {}, kCollect) +
                         Frame(3, wire::MESSAGE) + Frame(3, wire::MESSAGE) +
                         Frame(3, wire::HALF_CLOSE) + Frame(3, wire::HALF_CLOSE))
                  .ok());
  resp = ResponseOf(*raw, 3);
  EXPECT_EQ(resp.status_code(), 0) << resp.status_message();
}

TEST_F(StreamFaultTest, MessageOnAServerStreamFailsTheCall) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  ExpandRequest req;
  req.set_count(1 << 20);
  req.set_size(10);
  ASSERT_TRUE(raw->Write(Frame(1, wire::REQUEST, req.SerializeAsString(), kExpand) +
                         Frame(1, wire::MESSAGE, "x"))
                  .ok());
  wire::FrameMeta resp = ResponseOf(*raw, 1);
  EXPECT_EQ(resp.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(resp.status_message().find("sends only its request"), std::string::npos)
      << resp.status_message();
}

TEST_F(StreamFaultTest, WindowUpdateOfZeroOrOverflowingFailsTheCall) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  ExpandRequest req;
  req.set_count(1 << 20);
  req.set_size(1000);
  const std::string request = req.SerializeAsString();
  wire::FrameMeta zero;
  zero.set_call_id(1);
  zero.set_kind(wire::WINDOW_UPDATE);
  wire::FrameMeta huge = zero;
  huge.set_call_id(3);
  // On top of the initial 64 KiB, unspent: a bidi server that has sent
  // nothing yet.
  huge.set_window_increment(0x7fffffff);
  ASSERT_TRUE(raw->Write(Frame(1, wire::REQUEST, request, kExpand) +
                         testing::EncodeFrame(zero, "") +
                         Frame(3, wire::REQUEST, "", kChatSync) +
                         testing::EncodeFrame(huge, ""))
                  .ok());
  wire::FrameMeta first = ResponseOf(*raw, 1);
  EXPECT_EQ(first.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(first.status_message().find("increment 0"), std::string::npos)
      << first.status_message();
  wire::FrameMeta second = ResponseOf(*raw, 3);
  EXPECT_EQ(second.status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(second.status_message().find("2^31-1"), std::string::npos)
      << second.status_message();
}

TEST_F(StreamFaultTest, FramesForAFinishedCallAreIgnored) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  ExpandRequest req;
  req.set_count(1);
  req.set_size(1);
  ASSERT_TRUE(
      raw->Write(Frame(1, wire::REQUEST, req.SerializeAsString(), kExpand))
          .ok());
  EXPECT_EQ(ResponseOf(*raw, 1).status_code(), 0);
  // Crossing the end on the wire: dropped, and the connection goes on.
  wire::FrameMeta update;
  update.set_call_id(1);
  update.set_kind(wire::WINDOW_UPDATE);
  update.set_window_increment(100);
  wire::FrameMeta ping;
  ping.set_kind(wire::PING);
  ASSERT_TRUE(raw->Write(Frame(1, wire::MESSAGE, "x") +
                         Frame(1, wire::HALF_CLOSE) +
                         testing::EncodeFrame(update, "") +
                         testing::EncodeFrame(ping, "still there?"))
                  .ok());
  absl::StatusOr<testing::Frame> pong = raw->ReadFrame(absl::Seconds(5));
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->meta.kind(), wire::PONG) << testing::DescribeFrame(*pong);
  EXPECT_EQ(pong->payload, "still there?");
}

TEST_F(StreamFaultTest, OversizedMessageFailsTheCallAndTheConnectionGoesOn) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  echo::EchoRequest req;
  req.set_message(std::string((4 << 20) + 1, 'o'));
  wire::FrameMeta ping;
  ping.set_kind(wire::PING);
  ASSERT_TRUE(raw->Write(Frame(1, wire::REQUEST, {}, kCollect) +
                         Frame(1, wire::MESSAGE, req.SerializeAsString()) +
                         testing::EncodeFrame(ping, "after"))
                  .ok());
  wire::FrameMeta resp = ResponseOf(*raw, 1);
  EXPECT_EQ(resp.status_code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(resp.status_message().find("request message of"),
            std::string::npos)
      << resp.status_message();
  absl::StatusOr<testing::Frame> pong = raw->ReadFrame(absl::Seconds(5));
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->meta.kind(), wire::PONG);
}

// The largest size the kernel lets a TCP socket buffer of this kind grow
// to: the third field of /proc/sys/net/ipv4/tcp_wmem or tcp_rmem; -1 if
// unreadable.
int64_t MaxSocketBufferBytes(const char* file) {
  std::ifstream in(absl::StrCat("/proc/sys/net/ipv4/", file));
  int64_t min = -1, def = -1, max = -1;
  in >> min >> def >> max;
  return in ? max : -1;
}

// Connection-level flow control alone: a client that grants a huge window
// but stops reading its socket. The server's output passes its write high
// watermark, the stream stops accepting writes (the handler waits on
// OnWritable), and once the client reads again libevent's write callback
// makes the stream writable and wakes the handler, which finishes.
TEST_F(StreamFaultTest, ConnectionBackpressureStopsAStreamWithAHugeWindow) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  constexpr int kSize = 16 * 1024;
  constexpr int kCount = 16 * 1024;  // 256 MiB if nothing held it back.
  ExpandRequest req;
  req.set_count(kCount);
  req.set_size(kSize);
  wire::FrameMeta open;
  open.set_call_id(1);
  open.set_kind(wire::REQUEST);
  open.set_method(kExpand);
  open.set_initial_window(0x7fffffff);  // Credit is never the limit.
  ASSERT_TRUE(
      raw->Write(testing::EncodeFrame(open, req.SerializeAsString())).ok());
  const int64_t accepted = WaitUntilStalled();
  // Bounded by the connection's output (high watermark), one stream buffer
  // and a message in hand, and the kernel's socket buffers on both ends
  // (the server's send buffer, the client's receive buffer).
  const int64_t send_buffer = MaxSocketBufferBytes("tcp_wmem");
  const int64_t receive_buffer = MaxSocketBufferBytes("tcp_rmem");
  ASSERT_GT(send_buffer, 0);
  ASSERT_GT(receive_buffer, 0);
  const int64_t bound =
      static_cast<int64_t>(ServerOptions().connection.write_high_watermark +
                           ServerOptions().stream_write_buffer_bytes) +
      2 * kSize + send_buffer + receive_buffer;
  std::printf("connection backpressure: %lld messages (%lld KiB) accepted "
              "while the client read nothing; bound %lld KiB\n",
              static_cast<long long>(accepted),
              static_cast<long long>(accepted * kSize / 1024),
              static_cast<long long>(bound / 1024));
  EXPECT_GT(accepted, 0);
  EXPECT_LE(accepted * kSize, bound) << accepted << " accepted";
  // Reading resumes it to the end.
  int messages = 0;
  while (true) {
    absl::StatusOr<testing::Frame> f = raw->ReadFrame(absl::Seconds(10));
    ASSERT_TRUE(f.ok()) << f.status() << " after " << messages;
    if (f->meta.kind() == wire::MESSAGE) {
      ++messages;
      continue;
    }
    if (f->meta.kind() == wire::RESPONSE) {
      EXPECT_EQ(f->meta.status_code(), 0) << f->meta.status_message();
      break;
    }
  }
  EXPECT_EQ(messages, kCount);
}

TEST_F(StreamFaultTest, MessageForACallNeverOpenedIsAProtocolError) {
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->Write(Frame(7, wire::MESSAGE, "x")).ok());
  absl::StatusOr<testing::Frame> f = raw->ReadFrame(absl::Seconds(5));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->meta.kind(), wire::GOAWAY);
  EXPECT_NE(f->meta.status_message().find("never opened"), std::string::npos);
  EXPECT_TRUE(raw->WaitForClose().ok());
}

}  // namespace
}  // namespace bevrpc
