// End-to-end tests of echo_server against malformed, hostile and fragmented
// wire-v1 input, driven black-box over real loopback sockets.
//
// Each test starts its own server (--port=0 --threads=2) and expects it to
// exit with status 0 after SIGTERM. Bad input must be answered with the exact
// status code and a message that names the problem; where the protocol says
// the connection is refused, a GOAWAY arrives and then the connection closes.
// Connections other than the bad one must keep working.
#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.pb.h"
#include "tests/testing/raw_client.h"
#include "tests/testing/server_process.h"

namespace bevrpc {
namespace {

using ::bevrpc::echo::EchoRequest;
using ::bevrpc::echo::EchoResponse;
using ::bevrpc::testing::DescribeFrame;
using ::bevrpc::testing::EncodeFrame;
using ::bevrpc::testing::EncodeFrameWithRawMeta;
using ::bevrpc::testing::EncodeHeader;
using ::bevrpc::testing::Frame;
using ::bevrpc::testing::RawClient;
using ::bevrpc::testing::ServerProcess;
using ::bevrpc::wire::FrameKind;
using ::bevrpc::wire::FrameMeta;

constexpr char kServerBinary[] = "services/echo/echo_server";
constexpr char kEchoMethod[] = "bevrpc.echo.Echo/Echo";
constexpr uint32_t kMaxMessageBytes = 4 << 20;  // Server default payload limit.
constexpr uint32_t kMaxMetaBytes = 16 << 10;    // Server default meta limit.
// How long a well-behaved server may take to answer anything on loopback.
constexpr absl::Duration kReplyTimeout = absl::Seconds(5);

int Code(absl::StatusCode code) { return static_cast<int>(code); }

// Sockets the process `pid` holds open (its listener, its connections and
// any of its loops' own), from /proc/PID/fd; -1 if unreadable.
int OpenSockets(pid_t pid) {
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int sockets = 0;
  while (dirent* entry = readdir(d)) {
    char target[64];
    const std::string path = absl::StrCat(dir, "/", entry->d_name);
    const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n > 0 && absl::StartsWith(absl::string_view(target, n), "socket:")) {
      ++sockets;
    }
  }
  closedir(d);
  return sockets;
}

// --- Frame builders -------------------------------------------------------

FrameMeta RequestMeta(uint64_t call_id, absl::string_view method = kEchoMethod,
                      uint64_t timeout_us = 0) {
  FrameMeta meta;
  meta.set_call_id(call_id);
  meta.set_kind(wire::REQUEST);
  meta.set_method(std::string(method));
  meta.set_timeout_us(timeout_us);
  return meta;
}

std::string EchoPayload(absl::string_view message, uint32_t delay_ms = 0) {
  EchoRequest request;
  request.set_message(std::string(message));
  request.set_delay_ms(delay_ms);
  return request.SerializeAsString();
}

std::string RequestFrame(uint64_t call_id, absl::string_view message,
                         uint32_t delay_ms = 0, uint64_t timeout_us = 0) {
  return EncodeFrame(RequestMeta(call_id, kEchoMethod, timeout_us),
                     EchoPayload(message, delay_ms));
}

// A frame with only call_id and kind set, e.g. CANCEL or HALF_CLOSE.
std::string BareFrame(FrameKind kind, uint64_t call_id,
                      absl::string_view payload = "") {
  FrameMeta meta;
  meta.set_call_id(call_id);
  meta.set_kind(kind);
  return EncodeFrame(meta, payload);
}

std::string PingFrame(absl::string_view payload) {
  return BareFrame(wire::PING, 0, payload);
}

// --- Expectations ---------------------------------------------------------

// Lower-cases and turns '_' into ' ', so "meta_size" matches "meta size".
std::string Normalize(absl::string_view text) {
  return absl::StrReplaceAll(absl::AsciiStrToLower(text), {{"_", " "}});
}

bool MessageNames(absl::string_view message, absl::string_view needle) {
  return absl::StrContains(Normalize(message), Normalize(needle));
}

// Adds a failure for each of `needles` that `message` does not contain
// (case-insensitive, '_' == ' ').
void ExpectMessageNames(absl::string_view message,
                        std::initializer_list<absl::string_view> needles) {
  for (absl::string_view needle : needles) {
    EXPECT_TRUE(MessageNames(message, needle))
        << "status message \"" << message << "\" does not mention \"" << needle
        << "\"";
  }
}

// Sends one Echo call and returns the echoed message, or an error that
// describes what came back instead.
absl::StatusOr<std::string> EchoOnce(RawClient& client, uint64_t call_id,
                                     absl::string_view message) {
  absl::Status written = client.Write(RequestFrame(call_id, message));
  if (!written.ok()) return written;
  absl::StatusOr<Frame> frame = client.ReadFrame(kReplyTimeout);
  if (!frame.ok()) return frame.status();
  if (frame->meta.kind() != wire::RESPONSE ||
      frame->meta.call_id() != call_id ||
      frame->meta.status_code() != Code(absl::StatusCode::kOk)) {
    return absl::InternalError(
        absl::StrCat("expected an OK RESPONSE for call ", call_id, ", got ",
                     DescribeFrame(*frame)));
  }
  EchoResponse response;
  if (!response.ParseFromString(frame->payload)) {
    return absl::DataLossError("EchoResponse does not parse");
  }
  return response.message();
}

// Expects the next frame to be a RESPONSE for `call_id` with `code`, and
// returns it (a default Frame after a failure).
Frame ExpectResponse(RawClient& client, uint64_t call_id,
                     absl::StatusCode code,
                     absl::Duration timeout = kReplyTimeout) {
  absl::StatusOr<Frame> frame = client.ReadFrame(timeout);
  if (!frame.ok()) {
    ADD_FAILURE() << "no RESPONSE for call " << call_id << ": "
                  << frame.status();
    return Frame();
  }
  EXPECT_EQ(frame->meta.kind(), wire::RESPONSE) << DescribeFrame(*frame);
  EXPECT_EQ(frame->meta.call_id(), call_id) << DescribeFrame(*frame);
  EXPECT_EQ(frame->meta.status_code(), Code(code)) << DescribeFrame(*frame);
  return *std::move(frame);
}

// Expects the next frame to be a PONG carrying `payload`.
void ExpectPong(RawClient& client, absl::string_view payload) {
  absl::StatusOr<Frame> frame = client.ReadFrame(kReplyTimeout);
  ASSERT_TRUE(frame.ok()) << "no PONG: " << frame.status();
  EXPECT_EQ(frame->meta.kind(), wire::PONG) << DescribeFrame(*frame);
  EXPECT_EQ(frame->meta.call_id(), 0u) << DescribeFrame(*frame);
  EXPECT_EQ(frame->payload, payload) << DescribeFrame(*frame);
}

// Expects a GOAWAY with INVALID_ARGUMENT whose message mentions each of
// `needles`, and then the server closing the connection.
void ExpectGoawayAndClose(RawClient& client,
                          std::initializer_list<absl::string_view> needles) {
  absl::StatusOr<Frame> frame = client.ReadFrame(kReplyTimeout);
  ASSERT_TRUE(frame.ok()) << "expected a GOAWAY frame: " << frame.status();
  EXPECT_EQ(frame->meta.kind(), wire::GOAWAY) << DescribeFrame(*frame);
  EXPECT_EQ(frame->meta.call_id(), 0u) << DescribeFrame(*frame);
  EXPECT_EQ(frame->meta.status_code(),
            Code(absl::StatusCode::kInvalidArgument))
      << DescribeFrame(*frame);
  // No call was opened on the bad connection, so none will be finished.
  EXPECT_EQ(frame->meta.last_call_id(), 0u) << DescribeFrame(*frame);
  ExpectMessageNames(frame->meta.status_message(), needles);
  absl::Status closed = client.WaitForClose(kReplyTimeout);
  EXPECT_TRUE(closed.ok()) << "after GOAWAY: " << closed;
}

class WireBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }

  // (Re)starts the server with `extra` flags.
  void StartServer(std::vector<std::string> extra) {
    if (server_ != nullptr) {
      absl::Status stopped = server_->Stop();
      EXPECT_TRUE(stopped.ok()) << "graceful shutdown: " << stopped;
      server_.reset();
    }
    std::vector<std::string> flags = {"--port=0", "--threads=2"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(kServerBinary, flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    EXPECT_TRUE(server_->IsRunning()) << "the server died during the test";
    absl::Status stopped = server_->Stop();
    EXPECT_TRUE(stopped.ok()) << "graceful shutdown: " << stopped;
  }

  // A new connection to the server; nullptr (and a failure) if that fails.
  std::unique_ptr<RawClient> Connect() {
    absl::StatusOr<std::unique_ptr<RawClient>> client =
        RawClient::Connect(server_->port());
    if (!client.ok()) {
      ADD_FAILURE() << "connect: " << client.status();
      return nullptr;
    }
    return *std::move(client);
  }

  // A connection that has completed one call, so the server has surely
  // accepted it before the test misbehaves on another connection.
  std::unique_ptr<RawClient> ConnectBystander() {
    std::unique_ptr<RawClient> client = Connect();
    if (client == nullptr) return nullptr;
    absl::StatusOr<std::string> echoed = EchoOnce(*client, 1, "bystander");
    if (!echoed.ok()) {
      ADD_FAILURE() << "bystander call before the bad input: "
                    << echoed.status();
      return nullptr;
    }
    return client;
  }

  // Expects the server still to serve `bystander` (opened before the bad
  // input) and a brand-new connection.
  void ExpectStillServing(RawClient& bystander) {
    absl::StatusOr<std::string> echoed = EchoOnce(bystander, 1001, "still");
    EXPECT_TRUE(echoed.ok()) << "bystander connection: " << echoed.status();
    if (echoed.ok()) {
      EXPECT_EQ(*echoed, "still");
    }

    std::unique_ptr<RawClient> fresh = Connect();
    ASSERT_NE(fresh, nullptr);
    echoed = EchoOnce(*fresh, 1, "fresh");
    EXPECT_TRUE(echoed.ok()) << "new connection: " << echoed.status();
    EXPECT_TRUE(server_->IsRunning());
  }

  // Sends `bad_bytes` on a new connection, expects GOAWAY (INVALID_ARGUMENT,
  // message naming each of `needles`) and close, and that a connection opened
  // before still works.
  void ExpectRefusedWithGoaway(
      absl::string_view bad_bytes,
      std::initializer_list<absl::string_view> needles) {
    std::unique_ptr<RawClient> bystander = ConnectBystander();
    ASSERT_NE(bystander, nullptr);
    std::unique_ptr<RawClient> bad = Connect();
    ASSERT_NE(bad, nullptr);
    ASSERT_TRUE(bad->Write(bad_bytes).ok());
    ASSERT_NO_FATAL_FAILURE(ExpectGoawayAndClose(*bad, needles));
    ExpectStillServing(*bystander);
  }

  // Waits (generously) until the server holds exactly `want` sockets: how a
  // test sees that the server has closed a connection.
  void WaitForServerSockets(int want) {
    const absl::Time until = absl::Now() + absl::Seconds(10);
    int now = OpenSockets(server_->pid());
    while (now != want && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(5));
      now = OpenSockets(server_->pid());
    }
    ASSERT_EQ(now, want) << "server sockets";
  }

  // Opens a unary call, sends a streaming-only `kind` frame for it, and
  // expects the call (or the connection) to fail clearly.
  void ExpectStreamingKindRejected(FrameKind kind);

  std::unique_ptr<ServerProcess> server_;
};

// --- 1. Wrong magic -------------------------------------------------------

TEST_F(WireBadInputTest, WrongMagicHttpGetsGoawayAndCloseWithHttpOff) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--http=off"}));
  ExpectRefusedWithGoaway("GET / HTTP/1.1\r\n\r\n", {"magic"});
}

TEST_F(WireBadInputTest, HttpRequestIsAnsweredNeverDispatched) {
  // With the pages on (the default), an HTTP request gets an HTTP answer,
  // whatever its path names: a method path is no call.
  std::unique_ptr<RawClient> bystander = ConnectBystander();
  ASSERT_NE(bystander, nullptr);
  std::unique_ptr<RawClient> http = Connect();
  ASSERT_NE(http, nullptr);
  ASSERT_TRUE(http->Write("POST /bevrpc.echo.Echo/Echo HTTP/1.1\r\n"
                          "Host: x\r\nContent-Length: 0\r\n\r\n"
                          "GET /bevrpc.echo.Echo/Echo HTTP/1.1\r\n"
                          "Host: x\r\n\r\n")
                  .ok());
  absl::StatusOr<testing::HttpReply> post = http->ReadHttpResponse(kReplyTimeout);
  ASSERT_TRUE(post.ok()) << post.status();
  EXPECT_EQ(post->status, 405);
  absl::StatusOr<testing::HttpReply> get = http->ReadHttpResponse(kReplyTimeout);
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->status, 404);
  // Bevrpc frames on an HTTP connection are a malformed HTTP request.
  ASSERT_TRUE(http->Write(RequestFrame(1, "x")).ok());
  absl::StatusOr<testing::HttpReply> bad = http->ReadHttpResponse(kReplyTimeout);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(http->WaitForClose(kReplyTimeout).ok());
  ExpectStillServing(*bystander);
}

TEST_F(WireBadInputTest, WrongMagicTlsClientHelloGetsGoawayAndClose) {
  ExpectRefusedWithGoaway(
      absl::string_view("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11),
      {"magic"});
}

TEST_F(WireBadInputTest, WrongMagicThreeBytesAnsweredBeforeFullHeader) {
  // Only three bytes are sent and the socket stays open: the server must
  // not wait for a full 12-byte header to see that the magic is wrong.
  // ("GE" could still be an HTTP method, "GEX" cannot.)
  ExpectRefusedWithGoaway("GEX", {"magic"});
}

TEST_F(WireBadInputTest, WrongMagicThreeBytesWithHttpOff) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--http=off"}));
  ExpectRefusedWithGoaway("GET", {"magic"});
}

// --- 2. Malformed header or meta ------------------------------------------

TEST_F(WireBadInputTest, MetaSizeLargerThanBodySizeGetsGoawayAndClose) {
  std::string frame = EncodeHeader(/*body_size=*/33, /*meta_size=*/77);
  frame.append(33, '\0');
  ExpectRefusedWithGoaway(frame, {"meta_size", "77", "33"});
}

TEST_F(WireBadInputTest, MetaSizeOverLimitGetsGoawayBeforeMetaArrives) {
  // Only the header is sent: the limit is checked before buffering the meta.
  const uint32_t meta_size = kMaxMetaBytes + 1;
  ExpectRefusedWithGoaway(EncodeHeader(meta_size, meta_size),
                          {"meta_size", absl::StrCat(meta_size),
                           absl::StrCat(kMaxMetaBytes)});
}

TEST_F(WireBadInputTest, UnparseableMetaGetsGoawayAndClose) {
  // Field 3 (method) claims 10 bytes but the meta section holds only 3.
  const std::string meta_bytes("\x1a\x0a" "abc", 5);
  ExpectRefusedWithGoaway(EncodeFrameWithRawMeta(meta_bytes, ""), {"meta"});
}

TEST_F(WireBadInputTest, KindUnspecifiedGetsGoawayAndClose) {
  FrameMeta meta = RequestMeta(1);
  meta.set_kind(wire::FRAME_KIND_UNSPECIFIED);
  ExpectRefusedWithGoaway(EncodeFrame(meta, EchoPayload("x")), {"kind"});
}

TEST_F(WireBadInputTest, KindUnknownEnumValueGetsGoawayAndClose) {
  FrameMeta meta = RequestMeta(1);
  meta.set_kind(static_cast<FrameKind>(99));
  ExpectRefusedWithGoaway(EncodeFrame(meta, EchoPayload("x")),
                          {"kind", "99"});
}

TEST_F(WireBadInputTest, RequestWithCallIdZeroGetsGoawayAndClose) {
  ExpectRefusedWithGoaway(EncodeFrame(RequestMeta(0), EchoPayload("x")),
                          {"call_id"});
}

TEST_F(WireBadInputTest, ResponseFromClientGetsGoawayAndClose) {
  FrameMeta meta;
  meta.set_call_id(1);
  meta.set_kind(wire::RESPONSE);
  EchoResponse response;
  response.set_message("not yours to send");
  ExpectRefusedWithGoaway(EncodeFrame(meta, response.SerializeAsString()),
                          {"response"});
}

// --- 3. Oversized payload -------------------------------------------------

TEST_F(WireBadInputTest, OversizedPayloadGetsResourceExhaustedAndIsDiscarded) {
  std::unique_ptr<RawClient> bystander = ConnectBystander();
  ASSERT_NE(bystander, nullptr);
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);

  const uint32_t payload_size = 8 << 20;
  const std::string meta = RequestMeta(1).SerializeAsString();
  const uint32_t meta_size = static_cast<uint32_t>(meta.size());
  ASSERT_TRUE(
      client->Write(EncodeHeader(meta_size + payload_size, meta_size) + meta)
          .ok());

  // The rejection arrives before any of the payload is sent.
  Frame rejected =
      ExpectResponse(*client, 1, absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(rejected.meta.status_message(),
            absl::StrCat("request payload of ", payload_size,
                         " bytes exceeds max_message_bytes ",
                         kMaxMessageBytes));

  // The server discards the payload as it streams in...
  const std::string chunk(1 << 20, '\xa5');
  for (uint32_t sent = 0; sent < payload_size; sent += chunk.size()) {
    absl::Status written = client->Write(chunk);
    ASSERT_TRUE(written.ok()) << "after " << sent << " payload bytes: "
                              << written;
  }
  // ...and then reads the next frame normally.
  absl::StatusOr<std::string> echoed = EchoOnce(*client, 2, "after discard");
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, "after discard");

  ExpectStillServing(*bystander);
}

TEST_F(WireBadInputTest, MaxBodySizeGetsPromptResourceExhausted) {
  std::unique_ptr<RawClient> bystander = ConnectBystander();
  ASSERT_NE(bystander, nullptr);
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);

  const uint32_t body_size = 0xFFFFFFFFu;
  const std::string meta = RequestMeta(1).SerializeAsString();
  const uint32_t meta_size = static_cast<uint32_t>(meta.size());
  const uint32_t payload_size = body_size - meta_size;
  ASSERT_TRUE(client->Write(EncodeHeader(body_size, meta_size) + meta).ok());

  // Prompt: answered from the header alone, none of the payload is sent.
  Frame rejected =
      ExpectResponse(*client, 1, absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(rejected.meta.status_message(),
            absl::StrCat("request payload of ", payload_size,
                         " bytes exceeds max_message_bytes ",
                         kMaxMessageBytes));

  ExpectStillServing(*bystander);
}

// --- 4. Per-call errors on a healthy connection ---------------------------

TEST_F(WireBadInputTest, UnknownServiceGetsUnimplementedAndConnectionGoesOn) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client
                  ->Write(EncodeFrame(
                      RequestMeta(1, "bevrpc.nosuch.NoSuchService/Echo"),
                      EchoPayload("x")))
                  .ok());
  Frame rejected = ExpectResponse(*client, 1, absl::StatusCode::kUnimplemented);
  ExpectMessageNames(rejected.meta.status_message(), {"NoSuchService"});

  absl::StatusOr<std::string> echoed = EchoOnce(*client, 2, "next");
  EXPECT_TRUE(echoed.ok()) << echoed.status();
}

TEST_F(WireBadInputTest, UnknownMethodGetsUnimplementedAndConnectionGoesOn) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client
                  ->Write(EncodeFrame(
                      RequestMeta(1, "bevrpc.echo.Echo/NoSuchMethod"),
                      EchoPayload("x")))
                  .ok());
  Frame rejected = ExpectResponse(*client, 1, absl::StatusCode::kUnimplemented);
  ExpectMessageNames(rejected.meta.status_message(), {"NoSuchMethod"});

  absl::StatusOr<std::string> echoed = EchoOnce(*client, 2, "next");
  EXPECT_TRUE(echoed.ok()) << echoed.status();
}

TEST_F(WireBadInputTest, UnparseablePayloadGetsInvalidArgument) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  // Field 1 (message) claims 5 bytes but only 2 follow.
  const std::string payload("\x0a\x05" "ab", 4);
  ASSERT_TRUE(client->Write(EncodeFrame(RequestMeta(1), payload)).ok());
  Frame rejected =
      ExpectResponse(*client, 1, absl::StatusCode::kInvalidArgument);
  ExpectMessageNames(rejected.meta.status_message(), {"request"});

  absl::StatusOr<std::string> echoed = EchoOnce(*client, 2, "next");
  EXPECT_TRUE(echoed.ok()) << echoed.status();
}

TEST_F(WireBadInputTest, DuplicateCallIdRejectedWhileFirstCallCompletes) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  const uint64_t call_id = 4242;
  ASSERT_TRUE(client->Write(RequestFrame(call_id, "first", 300)).ok());
  ASSERT_TRUE(client->Write(RequestFrame(call_id, "second")).ok());

  // The duplicate is refused at once, while the first call is still open.
  Frame duplicate =
      ExpectResponse(*client, call_id, absl::StatusCode::kInvalidArgument);
  ExpectMessageNames(duplicate.meta.status_message(),
                     {"call", absl::StrCat(call_id)});

  Frame first = ExpectResponse(*client, call_id, absl::StatusCode::kOk);
  EchoResponse response;
  ASSERT_TRUE(response.ParseFromString(first.payload));
  EXPECT_EQ(response.message(), "first");

  // The duplicate never ran: the next frame is the PONG.
  ASSERT_TRUE(client->Write(PingFrame("after duplicate")).ok());
  ExpectPong(*client, "after duplicate");
  absl::StatusOr<std::string> echoed = EchoOnce(*client, call_id + 1, "next");
  EXPECT_TRUE(echoed.ok()) << echoed.status();
}

// --- 5. Deadline ----------------------------------------------------------

// Two echo calls without deadlines mark time on the same connection (one
// loop, so their delays fire in order with the slow call's): the deadline's
// answer must come before the first marker (the server did not wait for the
// handler), and nothing for call 5 may come between the markers (when the
// handler's own delay would have answered it a second time).
TEST_F(WireBadInputTest, DeadlineExceededArrivesPromptlyAndOnlyOnce) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  const absl::Time sent = absl::Now();
  ASSERT_TRUE(client
                  ->Write(RequestFrame(5, "slow", /*delay_ms=*/1000,
                                       /*timeout_us=*/100000) +
                          RequestFrame(6, "before the handler", 500) +
                          RequestFrame(7, "after the handler", 1200))
                  .ok());

  Frame expired =
      ExpectResponse(*client, 5, absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(50))
      << "DEADLINE_EXCEEDED came before the 100 ms budget was spent";
  EXPECT_EQ(expired.meta.status_message(),
            "deadline exceeded: bevrpc.echo.Echo/Echo did not finish within "
            "the caller's 100ms");

  for (const auto& [id, message] :
       {std::pair<uint64_t, const char*>{6, "before the handler"},
        {7, "after the handler"}}) {
    Frame marker = ExpectResponse(*client, id, absl::StatusCode::kOk);
    EchoResponse response;
    ASSERT_TRUE(response.ParseFromString(marker.payload));
    EXPECT_EQ(response.message(), message);
  }
}

// --- 6. Cancel ------------------------------------------------------------

TEST_F(WireBadInputTest, CancelledCallSendsNoResponse) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(RequestFrame(9, "cancel me", 300)).ok());
  ASSERT_TRUE(client->Write(BareFrame(wire::CANCEL, 9)).ok());
  // A marker due after the cancelled call would have answered (same
  // connection, same loop): the next frame must be its answer.
  ASSERT_TRUE(client->Write(RequestFrame(10, "next", 400)).ok());

  Frame next = ExpectResponse(*client, 10, absl::StatusCode::kOk);
  EchoResponse response;
  ASSERT_TRUE(response.ParseFromString(next.payload));
  EXPECT_EQ(response.message(), "next");
}

// --- 7. Fragmentation and batching ----------------------------------------

TEST_F(WireBadInputTest, RequestWrittenOneByteAtATimeIsAnswered) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SetNoDelay().ok());

  // Once with a pause between bytes, once back to back.
  for (const bool pause : {true, false}) {
    const uint64_t call_id = pause ? 1 : 2;
    const std::string message = absl::StrCat("bytewise pause=", pause);
    const std::string frame = RequestFrame(call_id, message);
    for (char byte : frame) {
      ASSERT_TRUE(client->Write(absl::string_view(&byte, 1)).ok());
      if (pause) absl::SleepFor(absl::Milliseconds(1));
    }
    Frame answer = ExpectResponse(*client, call_id, absl::StatusCode::kOk);
    EchoResponse response;
    ASSERT_TRUE(response.ParseFromString(answer.payload));
    EXPECT_EQ(response.message(), message);
  }
}

TEST_F(WireBadInputTest, FrameSplitAtEveryOffsetIsAnswered) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SetNoDelay().ok());

  const size_t frame_size = RequestFrame(1, "split-000").size();
  for (size_t k = 1; k < frame_size; ++k) {
    SCOPED_TRACE(absl::StrCat("split at byte ", k, " of ", frame_size));
    const uint64_t call_id = k;
    const std::string message = absl::StrFormat("split-%03d", k);
    const std::string frame = RequestFrame(call_id, message);
    ASSERT_EQ(frame.size(), frame_size);
    ASSERT_TRUE(client->Write(absl::string_view(frame).substr(0, k)).ok());
    absl::SleepFor(absl::Milliseconds(2));  // Let the first part land alone.
    ASSERT_TRUE(client->Write(absl::string_view(frame).substr(k)).ok());

    Frame answer = ExpectResponse(*client, call_id, absl::StatusCode::kOk);
    ASSERT_FALSE(::testing::Test::HasFailure());
    EchoResponse response;
    ASSERT_TRUE(response.ParseFromString(answer.payload));
    EXPECT_EQ(response.message(), message);
  }
}

TEST_F(WireBadInputTest, HundredFramesInOneWriteGetHundredResponses) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  constexpr int kCalls = 100;
  std::string batch;
  for (int id = 1; id <= kCalls; ++id) {
    batch += RequestFrame(id, absl::StrCat("batched ", id));
  }
  ASSERT_TRUE(client->Write(batch).ok());

  std::map<uint64_t, std::string> answers;  // call_id -> echoed message.
  for (int i = 0; i < kCalls; ++i) {
    absl::StatusOr<Frame> frame = client->ReadFrame(kReplyTimeout);
    ASSERT_TRUE(frame.ok()) << "response " << i << ": " << frame.status();
    ASSERT_EQ(frame->meta.kind(), wire::RESPONSE) << DescribeFrame(*frame);
    ASSERT_EQ(frame->meta.status_code(), Code(absl::StatusCode::kOk))
        << DescribeFrame(*frame);
    EchoResponse response;
    ASSERT_TRUE(response.ParseFromString(frame->payload));
    EXPECT_TRUE(answers.emplace(frame->meta.call_id(), response.message())
                    .second)
        << "second RESPONSE for call " << frame->meta.call_id();
  }
  ASSERT_EQ(answers.size(), kCalls);
  for (int id = 1; id <= kCalls; ++id) {
    EXPECT_EQ(answers[id], absl::StrCat("batched ", id));
  }
}

// --- 8. Peer resets -------------------------------------------------------

TEST_F(WireBadInputTest, PeerResetMidFrameDoesNotAffectOtherConnections) {
  std::unique_ptr<RawClient> bystander = ConnectBystander();
  ASSERT_NE(bystander, nullptr);
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);

  // A PING and half a frame in one small write, which arrives in one
  // segment and is read at once: the PONG shows that the server has read
  // the half frame too, and waits for the rest.
  const std::string frame = RequestFrame(1, "never finished");
  ASSERT_TRUE(client
                  ->Write(PingFrame("half follows") +
                          frame.substr(0, frame.size() / 2))
                  .ok());
  ASSERT_NO_FATAL_FAILURE(ExpectPong(*client, "half follows"));
  const int sockets = OpenSockets(server_->pid());
  ASSERT_GT(sockets, 0);
  client->ResetAndClose();
  // The server has seen the reset once it has closed its end.
  ASSERT_NO_FATAL_FAILURE(WaitForServerSockets(sockets - 1));

  ExpectStillServing(*bystander);
}

TEST_F(WireBadInputTest, PeerResetWithCallInFlightDoesNotAffectOthers) {
  std::unique_ptr<RawClient> bystander = ConnectBystander();
  ASSERT_NE(bystander, nullptr);
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);

  // The peer goes while its call waits out its delay; the answer has
  // nowhere to go and must be dropped quietly. The PONG shows the call
  // was read (and opened) before the reset.
  ASSERT_TRUE(
      client->Write(RequestFrame(1, "orphan", 200) + PingFrame("opened")).ok());
  ASSERT_NO_FATAL_FAILURE(ExpectPong(*client, "opened"));
  const int sockets = OpenSockets(server_->pid());
  ASSERT_GT(sockets, 0);
  client->ResetAndClose();
  ASSERT_NO_FATAL_FAILURE(WaitForServerSockets(sockets - 1));

  ExpectStillServing(*bystander);
}

// --- 9. Ping --------------------------------------------------------------

TEST_F(WireBadInputTest, PingGetsPongWithSamePayload) {
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(PingFrame("abc")).ok());
  ExpectPong(*client, "abc");
}

// --- 10. Streaming-only kinds on a unary call -----------------------------

void WireBadInputTest::ExpectStreamingKindRejected(FrameKind kind) {
  const std::string kind_name = wire::FrameKind_Name(kind);
  std::unique_ptr<RawClient> bystander = ConnectBystander();
  ASSERT_NE(bystander, nullptr);
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);

  // The call fails, the connection goes on: a marker call due after the
  // failed one's 300 ms (same connection, same loop) must be the next
  // answer, so the failed call never also answers OK.
  const uint64_t call_id = 11;
  ASSERT_TRUE(client
                  ->Write(RequestFrame(call_id, "unary", 300) +
                          BareFrame(kind, call_id) +
                          RequestFrame(call_id + 1, "marker", 400))
                  .ok());

  Frame rejected =
      ExpectResponse(*client, call_id, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rejected.meta.status_message(),
            absl::StrCat(kind_name, " frame on unary call ", call_id, " (",
                         kEchoMethod,
                         "): unary calls take exactly one request"));
  Frame marker = ExpectResponse(*client, call_id + 1, absl::StatusCode::kOk);
  EchoResponse response;
  ASSERT_TRUE(response.ParseFromString(marker.payload));
  EXPECT_EQ(response.message(), "marker");
  ExpectStillServing(*bystander);
}

TEST_F(WireBadInputTest, MessageKindOnUnaryCallIsRejected) {
  ExpectStreamingKindRejected(wire::MESSAGE);
}

TEST_F(WireBadInputTest, HalfCloseKindOnUnaryCallIsRejected) {
  ExpectStreamingKindRejected(wire::HALF_CLOSE);
}

TEST_F(WireBadInputTest, WindowUpdateKindOnUnaryCallIsRejected) {
  ExpectStreamingKindRejected(wire::WINDOW_UPDATE);
}

}  // namespace
}  // namespace bevrpc
