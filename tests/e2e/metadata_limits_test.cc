// Metadata size limits (FrameLimits::max_metadata_bytes) end to end, both
// ways (docs/protocol.md, "Limits"):
//
//  - request headers over the server's limit get RESOURCE_EXHAUSTED naming
//    the size and the limit, and the handler is never called; exactly at
//    the limit passes; an empty key is INVALID_ARGUMENT; the connection
//    goes on;
//  - a channel refuses to send request headers over its own limit;
//  - a handler's trailers or a stream's initial headers over the limit fail
//    its call with RESOURCE_EXHAUSTED, and nothing oversized goes out;
//  - a channel fails a call whose trailers or headers from the server are
//    over its limit, with RESOURCE_EXHAUSTED.
//
// Sizes count key + value + 32 bytes per entry: with the default 8 KiB
// limit, one entry with a 1-byte key is at the limit with an 8,159-byte
// value.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/testing/raw_client.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;
using testing::RawClient;

// Unary: counts calls; answers with a trailer "t" whose value is the
// request's message.
constexpr char kTrailers[] = "bevrpc.test.Meta/Trailers";
// Server streaming: a header "h" whose value is the request's message, one
// message, then OK.
constexpr char kHeaders[] = "bevrpc.test.Meta/Headers";

constexpr size_t kLimit = 8 * 1024;
// The value that puts a one-entry map with a 1-byte key exactly at kLimit.
constexpr size_t kAtLimit = kLimit - 1 - 32;

class MetadataLimitsTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(std::move(options));
    std::atomic<int>* calls = &calls_;
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        kTrailers,
                        [calls](ServerContext& ctx, const EchoRequest& req,
                                EchoResponse* resp, Completion done) {
                          calls->fetch_add(1);
                          if (!req.message().empty()) {
                            ctx.AddTrailer("t", req.message());
                          }
                          resp->set_message("answer");
                          std::move(done).Finish(absl::OkStatus());
                        }))
                    .ok());
    ASSERT_TRUE(
        server_
            ->RegisterMethod(
                ServerStreamingCallbackMethod<EchoRequest, EchoResponse>(
                    kHeaders,
                    [](ServerContext& ctx, const EchoRequest& req,
                       ServerWriter<EchoResponse> writer, Completion done) {
                      ctx.AddHeader("h", req.message());
                      EchoResponse resp;
                      resp.set_message("first");
                      writer.Write(resp);  // False once the call failed.
                      std::move(done).Finish(absl::OkStatus());
                    }))
            .ok());
    ASSERT_TRUE(echo::RegisterEchoService(*server_).ok());
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  std::unique_ptr<Channel> NewChannel(size_t max_metadata_bytes = kLimit) {
    ChannelOptions options;
    options.limits.max_metadata_bytes = max_metadata_bytes;
    auto channel = Channel::Create(
        absl::StrCat("127.0.0.1:", server_->port()), std::move(options));
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *std::move(channel) : nullptr;
  }

  std::unique_ptr<RawClient> Connect() {
    auto raw = RawClient::Connect(server_->port());
    EXPECT_TRUE(raw.ok()) << raw.status();
    return raw.ok() ? *std::move(raw) : nullptr;
  }

  // Sends REQUEST `id` of `method` with `metadata` and `message`, and
  // returns every frame of that call up to its RESPONSE (inclusive).
  static std::vector<testing::Frame> RawCall(RawClient& raw, uint64_t id,
                                             const char* method,
                                             const Metadata& metadata,
                                             const std::string& message = "") {
    wire::FrameMeta meta;
    meta.set_call_id(id);
    meta.set_kind(wire::REQUEST);
    meta.set_method(method);
    meta.mutable_metadata()->insert(metadata.begin(), metadata.end());
    EchoRequest req;
    req.set_message(message);
    std::vector<testing::Frame> frames;
    absl::Status written =
        raw.Write(testing::EncodeFrame(meta, req.SerializeAsString()));
    if (!written.ok()) {
      ADD_FAILURE() << written;
      return frames;
    }
    while (true) {
      absl::StatusOr<testing::Frame> f = raw.ReadFrame(absl::Seconds(5));
      if (!f.ok()) {
        ADD_FAILURE() << f.status();
        return frames;
      }
      if (f->meta.call_id() != id) continue;
      frames.push_back(*f);
      if (f->meta.kind() == wire::RESPONSE) return frames;
    }
  }

  static Metadata OneEntry(size_t value_bytes) {
    return {{"k", std::string(value_bytes, 'v')}};
  }

  std::unique_ptr<Server> server_;
  std::atomic<int> calls_{0};
};

TEST_F(MetadataLimitsTest, OversizedRequestHeadersAreRefusedBeforeTheHandler) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);

  std::vector<testing::Frame> over =
      RawCall(*raw, 1, kTrailers, OneEntry(kAtLimit + 1));
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].meta.status_code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(over[0].meta.status_message().find(
                "request headers of 8193 bytes"),
            std::string::npos)
      << over[0].meta.status_message();
  EXPECT_NE(over[0].meta.status_message().find("max_metadata_bytes 8192"),
            std::string::npos)
      << over[0].meta.status_message();
  EXPECT_EQ(calls_.load(), 0);

  // Exactly at the limit: served. The connection went on.
  std::vector<testing::Frame> at =
      RawCall(*raw, 3, kTrailers, OneEntry(kAtLimit));
  ASSERT_EQ(at.size(), 1u);
  EXPECT_EQ(at[0].meta.status_code(), 0) << testing::DescribeFrame(at[0]);
  EXPECT_EQ(calls_.load(), 1);

  // Many small entries are charged 32 bytes each: 256 entries of 2 + 0
  // bytes are 8,704 bytes, over the limit.
  Metadata many;
  for (int i = 0; i < 256; ++i) {
    many[std::string{static_cast<char>('a' + i / 26 % 26),
                     static_cast<char>('a' + i % 26)}] = "";
  }
  ASSERT_EQ(many.size(), 256u);
  std::vector<testing::Frame> tiny = RawCall(*raw, 5, kTrailers, many);
  ASSERT_EQ(tiny.size(), 1u);
  EXPECT_EQ(tiny[0].meta.status_code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted))
      << testing::DescribeFrame(tiny[0]);
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(MetadataLimitsTest, EmptyKeyIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  std::vector<testing::Frame> frames =
      RawCall(*raw, 1, kTrailers, {{"", "value"}});
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].meta.status_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(frames[0].meta.status_message().find("empty key"),
            std::string::npos);
  EXPECT_EQ(calls_.load(), 0);
}

// A channel whose own limit is higher still meets the server's.
TEST_F(MetadataLimitsTest, ServerRefusesAChannelWithAHigherLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto channel = NewChannel(/*max_metadata_bytes=*/12000);
  ASSERT_NE(channel, nullptr);
  EchoRequest req;
  EchoResponse resp;
  CallOptions options;
  options.timeout = absl::Seconds(5);
  options.metadata = OneEntry(kAtLimit + 1);
  absl::Status s = channel->Call(kTrailers, req, &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("max_metadata_bytes 8192"), std::string::npos)
      << s;
  EXPECT_EQ(calls_.load(), 0);
  options.metadata = OneEntry(kAtLimit);
  EXPECT_TRUE(channel->Call(kTrailers, req, &resp, options).ok());
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(MetadataLimitsTest, ChannelDoesNotSendOversizedRequestHeaders) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  EchoRequest req;
  EchoResponse resp;
  CallOptions options;
  options.timeout = absl::Seconds(5);
  options.metadata = OneEntry(kAtLimit + 1);
  absl::Status s = channel->Call(kTrailers, req, &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("request headers of 8193 bytes"),
            std::string::npos)
      << s;

  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel, kHeaders, MethodKind::kServerStreaming, &req, options);
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kResourceExhausted);

  options.metadata = {{"", "v"}};
  EXPECT_EQ(channel->Call(kTrailers, req, &resp, options).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls_.load(), 0);  // Nothing reached the server.
}

TEST_F(MetadataLimitsTest, OversizedTrailersFailTheCall) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  // On the wire: RESOURCE_EXHAUSTED, no trailers, no payload.
  std::vector<testing::Frame> over =
      RawCall(*raw, 1, kTrailers, {}, std::string(kAtLimit + 1, 'x'));
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].meta.status_code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(over[0].meta.status_message().find(
                "response trailers of 8193 bytes"),
            std::string::npos)
      << over[0].meta.status_message();
  EXPECT_TRUE(over[0].meta.metadata().empty());
  EXPECT_TRUE(over[0].payload.empty());

  // Through a channel: at the limit the trailers arrive whole.
  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  EchoRequest req;
  EchoResponse resp;
  Metadata trailers;
  CallOptions options;
  options.timeout = absl::Seconds(5);
  req.set_message(std::string(kAtLimit, 'x'));
  ASSERT_TRUE(channel->Call(kTrailers, req, &resp, options, &trailers).ok());
  EXPECT_EQ(resp.message(), "answer");
  EXPECT_EQ(trailers.at("t").size(), kAtLimit);
  req.set_message(std::string(kAtLimit + 1, 'x'));
  EXPECT_EQ(channel->Call(kTrailers, req, &resp, options).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(MetadataLimitsTest, OversizedStreamHeadersFailTheStream) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  // On the wire: neither HEADERS nor the MESSAGE, just the RESPONSE.
  std::vector<testing::Frame> over =
      RawCall(*raw, 1, kHeaders, {}, std::string(kAtLimit + 1, 'x'));
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].meta.status_code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_NE(over[0].meta.status_message().find(
                "response headers of 8193 bytes"),
            std::string::npos)
      << over[0].meta.status_message();

  std::vector<testing::Frame> at =
      RawCall(*raw, 3, kHeaders, {}, std::string(kAtLimit, 'x'));
  ASSERT_EQ(at.size(), 3u);
  EXPECT_EQ(at[0].meta.kind(), wire::HEADERS);
  EXPECT_EQ(at[0].meta.metadata().at("h").size(), kAtLimit);
  EXPECT_EQ(at[1].meta.kind(), wire::MESSAGE);
  EXPECT_EQ(at[2].meta.status_code(), 0);

  auto channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  EchoRequest req;
  req.set_message(std::string(kAtLimit + 1, 'x'));
  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel, kHeaders, MethodKind::kServerStreaming, &req);
  EchoResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(stream->headers().empty());
}

// A server allowed more than the channel: the channel refuses what
// exceeds its own limit, and the connection goes on.
TEST_F(MetadataLimitsTest, ChannelRejectsOversizedMetadataFromTheServer) {
  ServerOptions server_options;
  server_options.limits.max_metadata_bytes = 12000;
  ASSERT_NO_FATAL_FAILURE(StartServer(std::move(server_options)));
  auto channel = NewChannel();  // 8 KiB
  ASSERT_NE(channel, nullptr);
  EchoRequest req;
  EchoResponse resp;
  Metadata trailers;
  CallOptions options;
  options.timeout = absl::Seconds(5);

  req.set_message(std::string(10000, 'x'));
  absl::Status s = channel->Call(kTrailers, req, &resp, options, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("response trailers from the server of 10033 "
                             "bytes"),
            std::string::npos)
      << s;
  EXPECT_TRUE(trailers.empty());

  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel, kHeaders, MethodKind::kServerStreaming, &req, options);
  EXPECT_FALSE(stream->Read(&resp));
  absl::Status finished = stream->Finish();
  EXPECT_EQ(finished.code(), absl::StatusCode::kResourceExhausted)
      << finished;
  EXPECT_NE(finished.message().find("response headers from the server"),
            std::string::npos)
      << finished;
  EXPECT_TRUE(stream->headers().empty());

  // The same connection still serves calls within the limit.
  req.set_message(std::string(kAtLimit, 'x'));
  EXPECT_TRUE(channel->Call(kTrailers, req, &resp, options, &trailers).ok());
  EXPECT_EQ(trailers.at("t").size(), kAtLimit);
}

}  // namespace
}  // namespace bevrpc
