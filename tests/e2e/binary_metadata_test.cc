// Metadata and status messages that are not UTF-8, end to end
// (docs/protocol.md, "Metadata"): binary values (gRPC's "-bin" keys) and
// status messages of any bytes arrive unchanged, and a key outside
// [0-9a-z_.-] fails only its own call — INVALID_ARGUMENT on the client
// before anything is sent, INTERNAL for a handler's trailer or header,
// INVALID_ARGUMENT from the server for a raw peer's key that is not even
// UTF-8 — while a bidirectional stream opened first on the same connection
// keeps working and completes.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
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

// Unary. Echoes every request header back as a trailer (as gRPC's interop
// server does for x-grpc-test-echo-trailing-bin), adds a binary trailer,
// and then does what the request's message says:
//   "fail"        UNKNOWN "bad file name: caf\xe9.txt" (Latin-1, not UTF-8)
//   "bad-trailer" adds a trailer with the key "Bad Key"
constexpr char kProbe[] = "bevrpc.test.Bin/Probe";
// Server streaming: a header "x-h-bin" of binary bytes (or, if the
// request's message is "bad-header", a header "X-Upper"), one message, OK.
constexpr char kHeaders[] = "bevrpc.test.Bin/Headers";

const std::string kBinary("\xab\xab\xab", 3);
const std::string kAllBytes = [] {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  return all;
}();
constexpr char kLatin1Message[] = "bad file name: caf\xe9.txt";

class BinaryMetadataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(ServerOptions{});
    std::atomic<int>* calls = &calls_;
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        kProbe,
                        [calls](ServerContext& ctx, const EchoRequest& req,
                                EchoResponse* resp, Completion done) {
                          calls->fetch_add(1);
                          for (const auto& [k, v] : ctx.metadata()) {
                            ctx.AddTrailer(k, v);
                          }
                          ctx.AddTrailer("x-probe-bin", kBinary);
                          if (req.message() == "fail") {
                            std::move(done).Finish(
                                absl::UnknownError(kLatin1Message));
                            return;
                          }
                          if (req.message() == "bad-trailer") {
                            ctx.AddTrailer("Bad Key", "v");
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
                      if (req.message() == "bad-header") {
                        ctx.AddHeader("X-Upper", "v");
                      } else {
                        ctx.AddHeader("x-h-bin", kAllBytes);
                      }
                      EchoResponse resp;
                      resp.set_message("first");
                      writer.Write(resp);  // False once the call failed.
                      std::move(done).Finish(absl::OkStatus());
                    }))
            .ok());
    ASSERT_TRUE(echo::RegisterEchoService(*server_).ok());
    ASSERT_TRUE(server_->Start().ok());
    auto channel =
        Channel::Create(absl::StrCat("127.0.0.1:", server_->port()));
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *std::move(channel);
  }

  void TearDown() override {
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  absl::Status Probe(const std::string& message, const Metadata& headers,
                     Metadata* trailers) {
    EchoRequest req;
    req.set_message(message);
    EchoResponse resp;
    CallOptions options;
    options.timeout = absl::Seconds(10);
    options.metadata = headers;
    return channel_->Call(kProbe, req, &resp, options, trailers);
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  std::atomic<int> calls_{0};
};

// Every bad thing at once on one connection, between the first and the
// last message of a bidirectional stream opened before them.
TEST_F(BinaryMetadataTest, BadMetadataFailsOnlyItsCallWhileAStreamGoesOn) {
  CallOptions stream_options;
  stream_options.timeout = absl::Seconds(30);
  auto chat = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, "bevrpc.echo.Echo/Chat", MethodKind::kBidiStreaming, nullptr,
      stream_options);
  EchoRequest line;
  line.set_message("before");
  ASSERT_TRUE(chat->WriteBlocking(line).ok());
  EchoResponse echoed;
  ASSERT_TRUE(chat->Read(&echoed));
  EXPECT_EQ(echoed.message(), "before");

  // A binary request header travels and comes back as a trailer, with the
  // handler's own binary trailer.
  Metadata trailers;
  absl::Status s =
      Probe("ok", {{"x-grpc-test-echo-trailing-bin", kBinary}}, &trailers);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(trailers, (Metadata{{"x-grpc-test-echo-trailing-bin", kBinary},
                                {"x-probe-bin", kBinary}}));

  // Every byte value, under a "-bin" key and under a plain one.
  trailers.clear();
  s = Probe("ok", {{"all-bin", kAllBytes}, {"all", kAllBytes}}, &trailers);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(trailers.at("all-bin"), kAllBytes);
  EXPECT_EQ(trailers.at("all"), kAllBytes);

  // A status message that is not UTF-8 arrives byte for byte.
  trailers.clear();
  s = Probe("fail", {}, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), kLatin1Message);
  EXPECT_EQ(trailers, (Metadata{{"x-probe-bin", kBinary}}));

  // Bad request header keys fail on the client; the handler never runs.
  const int calls_before = calls_.load();
  for (const std::string& key :
       {std::string("X-Upper"), std::string("caf\xe9"), std::string("a b"),
        std::string("")}) {
    SCOPED_TRACE(key);
    s = Probe("ok", {{key, "v"}}, nullptr);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "request headers")) << s;
  }
  EXPECT_EQ(calls_.load(), calls_before);

  // A handler's bad trailer key: INTERNAL, and none of its trailers.
  trailers.clear();
  s = Probe("bad-trailer", {}, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_EQ(s.message(),
            "response trailers has an invalid key \"Bad Key\" (keys are "
            "lower-case: only a-z, 0-9, '-', '_' and '.')");
  EXPECT_TRUE(trailers.empty());

  // Stream headers: binary values arrive; a bad key fails that stream.
  EchoRequest req;
  auto good = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, kHeaders, MethodKind::kServerStreaming, &req, stream_options);
  EchoResponse resp;
  EXPECT_TRUE(good->Read(&resp));
  EXPECT_FALSE(good->Read(&resp));
  EXPECT_TRUE(good->Finish().ok());
  EXPECT_EQ(good->headers(), (Metadata{{"x-h-bin", kAllBytes}}));
  req.set_message("bad-header");
  auto bad = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, kHeaders, MethodKind::kServerStreaming, &req, stream_options);
  EXPECT_FALSE(bad->Read(&resp));
  s = bad->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "\"X-Upper\"")) << s;

  // The stream opened first is unharmed and completes.
  line.set_message("after");
  ASSERT_TRUE(chat->WriteBlocking(line).ok());
  chat->CloseSend();
  ASSERT_TRUE(chat->Read(&echoed));
  EXPECT_EQ(echoed.message(), "after");
  EXPECT_FALSE(chat->Read(&echoed));
  EXPECT_TRUE(chat->Finish().ok());
}

// A peer that is not bevrpc sends keys that are not UTF-8, binary values
// and a method name that is not UTF-8: each call gets its own answer and the
// connection goes on.
TEST_F(BinaryMetadataTest, RawPeerKeyThatIsNotUtf8FailsOnlyItsCall) {
  auto raw = RawClient::Connect(server_->port());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EchoRequest req;
  req.set_message("ok");
  const std::string payload = req.SerializeAsString();

  // REQUEST 1 with a map entry {key: "caf\xe9", value: "v"} written by hand
  // (protobuf will not serialize a `string` key that is not UTF-8 quietly).
  wire::FrameMeta meta;
  meta.set_call_id(1);
  meta.set_kind(wire::REQUEST);
  meta.set_method(kProbe);
  std::string meta_bytes = meta.SerializeAsString();
  meta_bytes += std::string("\x3a\x09\x0a\x04" "caf\xe9" "\x12\x01v", 11);
  ASSERT_TRUE(
      (*raw)->Write(testing::EncodeFrameWithRawMeta(meta_bytes, payload)).ok());
  absl::StatusOr<testing::Frame> f = (*raw)->ReadFrame(absl::Seconds(10));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->meta.call_id(), 1u);
  EXPECT_EQ(f->meta.kind(), wire::RESPONSE);
  EXPECT_EQ(f->meta.status_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(f->meta.status_message(),
            "request headers has an invalid key "
            "\"caf\\xef\\xbf\\xbd\" (keys are lower-case: only a-z, 0-9, "
            "'-', '_' and '.')");

  // REQUEST 2: a method name that is not UTF-8.
  meta.set_call_id(2);
  meta.set_method("bevrpc.test.Bin/Pro\xe9");
  ASSERT_TRUE((*raw)->Write(testing::EncodeFrame(meta, payload)).ok());
  f = (*raw)->ReadFrame(absl::Seconds(10));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->meta.call_id(), 2u);
  EXPECT_EQ(f->meta.status_code(),
            static_cast<int>(absl::StatusCode::kUnimplemented));

  // REQUEST 3 on the same connection, with a binary header: answered, with
  // the header echoed as a trailer.
  meta.set_call_id(3);
  meta.set_method(kProbe);
  (*meta.mutable_metadata())["x-grpc-test-echo-trailing-bin"] = kBinary;
  ASSERT_TRUE((*raw)->Write(testing::EncodeFrame(meta, payload)).ok());
  f = (*raw)->ReadFrame(absl::Seconds(10));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->meta.call_id(), 3u);
  EXPECT_EQ(f->meta.status_code(), 0) << f->meta.status_message();
  EXPECT_EQ(f->meta.metadata().at("x-grpc-test-echo-trailing-bin"), kBinary);
  EXPECT_EQ(f->meta.metadata().at("x-probe-bin"), kBinary);
  EchoResponse resp;
  ASSERT_TRUE(resp.ParseFromString(f->payload));
  EXPECT_EQ(resp.message(), "answer");
}

}  // namespace
}  // namespace bevrpc
