// End-to-end keepalive over loopback TCP (docs/protocol.md, "Keepalive"):
// the server pings quiet connections and closes those that answer nothing;
// the client does the same when ChannelOptions::keepalive_time is set; the
// server counts the client's pings and sends GOAWAY RESOURCE_EXHAUSTED to a
// connection that floods it, while legal pings, pings between calls and
// other connections go on.
//
// Raw frames come from RawClient (tests/testing/raw_client.h); the silent
// "server" is a plain listening socket whose connections are never read.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/wire.pb.h"
#include "tests/testing/raw_client.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using ::bevrpc::testing::DescribeFrame;
using ::bevrpc::testing::EncodeFrame;
using ::bevrpc::testing::Frame;
using ::bevrpc::testing::RawClient;
using ::google::protobuf::StringValue;

constexpr char kEcho[] = "test.Keepalive/Echo";
constexpr char kPeer[] = "test.Keepalive/Peer";
constexpr char kHang[] = "test.Keepalive/Hang";
// How long a healthy server may take to answer anything on loopback.
constexpr absl::Duration kReplyTimeout = absl::Seconds(2);

int Code(absl::StatusCode code) { return static_cast<int>(code); }

// The 8-byte big-endian counter a keepalive PING carries.
std::string PingPayload(uint64_t counter) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>(counter >> (56 - 8 * i));
  }
  return bytes;
}

std::string BareFrame(wire::FrameKind kind, absl::string_view payload = "") {
  wire::FrameMeta meta;
  meta.set_kind(kind);
  return EncodeFrame(meta, payload);
}

std::string RequestFrame(uint64_t call_id, absl::string_view method,
                         absl::string_view text) {
  wire::FrameMeta meta;
  meta.set_call_id(call_id);
  meta.set_kind(wire::REQUEST);
  meta.set_method(std::string(method));
  StringValue request;
  request.set_value(std::string(text));
  return EncodeFrame(meta, request.SerializeAsString());
}

// Expects `frame` to be an OK RESPONSE for `call_id` echoing `text`.
void ExpectEchoResponse(const Frame& frame, uint64_t call_id,
                        absl::string_view text) {
  EXPECT_EQ(frame.meta.kind(), wire::RESPONSE) << DescribeFrame(frame);
  EXPECT_EQ(frame.meta.call_id(), call_id) << DescribeFrame(frame);
  EXPECT_EQ(frame.meta.status_code(), 0) << DescribeFrame(frame);
  StringValue response;
  EXPECT_TRUE(response.ParseFromString(frame.payload));
  EXPECT_EQ(response.value(), text);
}

// One Echo call on a raw connection.
void ExpectEchoWorks(RawClient& client, uint64_t call_id) {
  std::string text = absl::StrCat("echo ", call_id);
  ASSERT_TRUE(client.Write(RequestFrame(call_id, kEcho, text)).ok());
  absl::StatusOr<Frame> frame = client.ReadFrame(kReplyTimeout);
  ASSERT_TRUE(frame.ok()) << "no RESPONSE for call " << call_id << ": "
                          << frame.status();
  ExpectEchoResponse(*frame, call_id, text);
}

// Expects the next frame to be a PONG carrying `payload`.
void ExpectPong(RawClient& client, absl::string_view payload) {
  absl::StatusOr<Frame> frame = client.ReadFrame(kReplyTimeout);
  ASSERT_TRUE(frame.ok()) << "no PONG: " << frame.status();
  EXPECT_EQ(frame->meta.kind(), wire::PONG) << DescribeFrame(*frame);
  EXPECT_EQ(frame->payload, payload) << DescribeFrame(*frame);
}

// A listening loopback socket that accepts (in the kernel) and never
// answers. Returns the fd and sets *port.
int ListenSilently(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// Accepts one queued connection (waiting at most `timeout`) and returns
// every frame the client sent on it, read up to its EOF.
absl::StatusOr<std::vector<Frame>> AcceptAndReadAll(int listen_fd,
                                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, absl::ToInt64Milliseconds(timeout)) != 1) {
    return absl::DeadlineExceededError("no connection to accept");
  }
  int fd = accept(listen_fd, nullptr, nullptr);
  if (fd < 0) return absl::InternalError("accept failed");
  std::string bytes;
  while (true) {
    pollfd q{fd, POLLIN, 0};
    int left = static_cast<int>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    if (poll(&q, 1, left) != 1) {
      close(fd);
      return absl::DeadlineExceededError("the client did not close");
    }
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) break;  // EOF or reset: the client closed.
    bytes.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  std::vector<Frame> frames;
  absl::string_view rest(bytes);
  while (rest.size() >= testing::kFrameHeaderSize) {
    auto be32 = [&](size_t at) {
      auto b = reinterpret_cast<const unsigned char*>(rest.data() + at);
      return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
             (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    };
    uint32_t body = be32(4), meta = be32(8);
    if (rest.substr(0, 4) != testing::kFrameMagic || meta > body ||
        rest.size() < testing::kFrameHeaderSize + body) {
      return absl::DataLossError("bad frame from the client");
    }
    Frame frame;
    if (!frame.meta.ParseFromArray(rest.data() + testing::kFrameHeaderSize,
                                   static_cast<int>(meta))) {
      return absl::DataLossError("FrameMeta does not parse");
    }
    frame.payload = std::string(
        rest.substr(testing::kFrameHeaderSize + meta, body - meta));
    frames.push_back(std::move(frame));
    rest.remove_prefix(testing::kFrameHeaderSize + body);
  }
  return frames;
}

// A call started with CallAsync() and what it ended with.
struct PendingCall {
  StringValue response;
  absl::Status status;
  absl::Time finished;
  Notification done;
};

class KeepaliveTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
  }

  void StartServer(ServerOptions options) {
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<StringValue, StringValue>(
                        kEcho,
                        [](ServerContext&, const StringValue& req,
                           StringValue* resp, Completion done) {
                          resp->set_value(req.value());
                          std::move(done).Finish(absl::OkStatus());
                        }))
                    .ok());
    // Which connection served the call: the client's address and port.
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<StringValue, StringValue>(
                        kPeer,
                        [](ServerContext& ctx, const StringValue&,
                           StringValue* resp, Completion done) {
                          resp->set_value(ctx.peer());
                          std::move(done).Finish(absl::OkStatus());
                        }))
                    .ok());
    // Never finishes on its own; records its cancellation.
    Notification* cancelled = &hang_cancelled_;
    ASSERT_TRUE(server_
                    ->RegisterMethod(CallbackMethod<StringValue, StringValue>(
                        kHang,
                        [cancelled](ServerContext& ctx, const StringValue&,
                                    StringValue*, Completion done) {
                          ctx.OnCancel([cancelled,
                                        d = std::make_shared<Completion>(
                                            std::move(done))] {
                            cancelled->Notify();
                          });
                        }))
                    .ok());
    ASSERT_TRUE(server_->Start().ok());
  }

  std::unique_ptr<RawClient> Connect() {
    absl::StatusOr<std::unique_ptr<RawClient>> client =
        RawClient::Connect(server_->port());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::unique_ptr<Channel> NewChannel(int port, ChannelOptions options) {
    auto channel = Channel::Create(absl::StrCat("127.0.0.1:", port), options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *std::move(channel) : nullptr;
  }

  // The peer address the server saw for a call on `channel`.
  std::string PeerSeenByServer(Channel& channel) {
    StringValue resp;
    CallOptions options;
    options.timeout = kReplyTimeout;
    absl::Status s = channel.Call(kPeer, StringValue(), &resp, options);
    EXPECT_TRUE(s.ok()) << s;
    return resp.value();
  }

  void StartCall(Channel& channel, absl::string_view method,
                 PendingCall* call) {
    channel.CallAsync(method, StringValue(), &call->response, CallOptions(),
                      [call](absl::Status s) {
                        call->status = std::move(s);
                        call->finished = absl::Now();
                        call->done.Notify();
                      });
  }

  std::unique_ptr<Server> server_;
  Notification hang_cancelled_;
};

// --- Server keepalive -----------------------------------------------------

ServerOptions ServerPinging() {
  ServerOptions options;
  options.keepalive_time = absl::Milliseconds(200);
  options.keepalive_timeout = absl::Milliseconds(300);
  return options;
}

TEST_F(KeepaliveTest, ServerClosesConnectionThatNeverAnswersPing) {
  ASSERT_NO_FATAL_FAILURE(StartServer(ServerPinging()));
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(RequestFrame(1, kHang, "")).ok());
  const absl::Time sent = absl::Now();

  absl::StatusOr<Frame> ping = client->ReadFrame(kReplyTimeout);
  ASSERT_TRUE(ping.ok()) << "no PING: " << ping.status();
  const absl::Time pinged = absl::Now();
  EXPECT_EQ(ping->meta.kind(), wire::PING) << DescribeFrame(*ping);
  EXPECT_EQ(ping->meta.call_id(), 0u) << DescribeFrame(*ping);
  EXPECT_EQ(ping->payload, PingPayload(1)) << DescribeFrame(*ping);
  EXPECT_GE(pinged - sent, absl::Milliseconds(180))
      << "pinged before keepalive_time of quiet";

  // Not answered: closed once keepalive_timeout has passed, not before.
  absl::Status closed = client->WaitForClose(kReplyTimeout);
  const absl::Time gone = absl::Now();
  ASSERT_TRUE(closed.ok()) << closed;
  EXPECT_GE(gone - pinged, absl::Milliseconds(250));
  EXPECT_LT(gone - pinged, absl::Milliseconds(1500));
  // The call open on it was cancelled, as when a client disconnects.
  EXPECT_TRUE(hang_cancelled_.WaitForNotificationWithTimeout(kReplyTimeout));
}

TEST_F(KeepaliveTest, ServerKeepsConnectionThatAnswersPings) {
  ASSERT_NO_FATAL_FAILURE(StartServer(ServerPinging()));
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);

  // For 1.6 s (over five keepalive_timeouts) answer every PING at once.
  const absl::Time end = absl::Now() + absl::Milliseconds(1600);
  uint64_t pings = 0;
  while (absl::Now() < end) {
    absl::StatusOr<Frame> frame = client->ReadFrame(end - absl::Now());
    if (absl::IsDeadlineExceeded(frame.status())) break;
    ASSERT_TRUE(frame.ok()) << "after " << pings << " PINGs: "
                            << frame.status();
    ASSERT_EQ(frame->meta.kind(), wire::PING) << DescribeFrame(*frame);
    ++pings;
    EXPECT_EQ(frame->payload, PingPayload(pings)) << DescribeFrame(*frame);
    ASSERT_TRUE(client->Write(BareFrame(wire::PONG, frame->payload)).ok());
  }
  EXPECT_GE(pings, 3u);
  ExpectEchoWorks(*client, 1);
}

TEST_F(KeepaliveTest, ServerPingsAreAnsweredByTheChannel) {
  ASSERT_NO_FATAL_FAILURE(StartServer(ServerPinging()));
  std::unique_ptr<Channel> channel = NewChannel(server_->port(), {});
  ASSERT_NE(channel, nullptr);
  const std::string before = PeerSeenByServer(*channel);
  ASSERT_FALSE(before.empty());
  // Quiet for three rounds of ping + timeout: only PONGs keep it open.
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(PeerSeenByServer(*channel), before)
      << "the server closed the channel's connection";
}

TEST_F(KeepaliveTest, SlowlyArrivingFrameIsNotADeadPeer) {
  ASSERT_NO_FATAL_FAILURE(StartServer(ServerPinging()));
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SetNoDelay().ok());
  const std::string text(190, 'x');
  const std::string frame = RequestFrame(1, kEcho, text);
  // The header at once, then the rest 10 bytes every 50 ms: about 1 s for
  // one frame, longer than keepalive_time + keepalive_timeout. No answer to
  // a PING is possible meanwhile; the bytes arriving are the sign of life.
  ASSERT_TRUE(client->Write(absl::string_view(frame).substr(0, 12)).ok());
  for (size_t at = 12; at < frame.size(); at += 10) {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(client->Write(absl::string_view(frame).substr(at, 10)).ok())
        << "connection closed " << at << " bytes into the frame";
  }
  // The RESPONSE, perhaps after PINGs sent while the frame arrived.
  while (true) {
    absl::StatusOr<Frame> answer = client->ReadFrame(kReplyTimeout);
    ASSERT_TRUE(answer.ok()) << answer.status();
    if (answer->meta.kind() == wire::PING) continue;
    ExpectEchoResponse(*answer, 1, text);
    break;
  }
}

TEST_F(KeepaliveTest, PingsDoNotDeferIdleTimeout) {
  ServerOptions options;
  options.idle_timeout = absl::Milliseconds(300);
  options.min_ping_interval = absl::Milliseconds(50);
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  // Legal pings every 100 ms; the connection has no calls, so it is idle.
  const absl::Time start = absl::Now();
  for (int i = 1;; ++i) {
    ASSERT_LT(absl::Now() - start, absl::Seconds(2))
        << "pings kept an idle connection open";
    ASSERT_TRUE(client->Write(BareFrame(wire::PING, PingPayload(i))).ok());
    absl::StatusOr<Frame> frame = client->ReadFrame(kReplyTimeout);
    ASSERT_TRUE(frame.ok()) << frame.status();
    if (frame->meta.kind() == wire::GOAWAY) {
      EXPECT_EQ(frame->meta.status_code(), 0) << DescribeFrame(*frame);
      break;
    }
    ASSERT_EQ(frame->meta.kind(), wire::PONG) << DescribeFrame(*frame);
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(client->WaitForClose(kReplyTimeout).ok());
}

// --- Client keepalive -----------------------------------------------------

ChannelOptions ChannelPinging() {
  ChannelOptions options;
  options.keepalive_time = absl::Milliseconds(100);
  options.keepalive_timeout = absl::Milliseconds(200);
  return options;
}

TEST_F(KeepaliveTest, ChannelFailsCallsWhenServerAnswersNothing) {
  int port = 0;
  int listen_fd = ListenSilently(&port);
  ASSERT_GE(listen_fd, 0);
  std::unique_ptr<Channel> channel = NewChannel(port, ChannelPinging());
  ASSERT_NE(channel, nullptr);

  // Two calls in turn: the second goes to a new connection, which fails
  // the same way.
  for (int round = 1; round <= 2; ++round) {
    SCOPED_TRACE(absl::StrCat("connection ", round));
    PendingCall call;
    const absl::Time start = absl::Now();
    StartCall(*channel, kEcho, &call);
    ASSERT_TRUE(call.done.WaitForNotificationWithTimeout(absl::Seconds(3)))
        << "the call is still open: keepalive never gave up";
    EXPECT_EQ(call.status.code(), absl::StatusCode::kUnavailable)
        << call.status;
    EXPECT_TRUE(absl::StrContains(call.status.message(), "keepalive"))
        << call.status;
    EXPECT_TRUE(absl::StrContains(call.status.message(), "200ms"))
        << call.status;
    // keepalive_time + keepalive_timeout = 300 ms.
    EXPECT_GE(call.finished - start, absl::Milliseconds(250));
    EXPECT_LT(call.finished - start, absl::Seconds(1));

    // What the silent server received: the REQUEST, then one PING.
    absl::StatusOr<std::vector<Frame>> frames =
        AcceptAndReadAll(listen_fd, kReplyTimeout);
    ASSERT_TRUE(frames.ok()) << frames.status();
    ASSERT_EQ(frames->size(), 2u);
    EXPECT_EQ((*frames)[0].meta.kind(), wire::REQUEST)
        << DescribeFrame((*frames)[0]);
    EXPECT_EQ((*frames)[1].meta.kind(), wire::PING)
        << DescribeFrame((*frames)[1]);
    EXPECT_EQ((*frames)[1].payload, PingPayload(1));
  }
  close(listen_fd);
}

TEST_F(KeepaliveTest, ChannelPingingAtItsKeepaliveTimeIsNeverPunished) {
  // The strictest server: a single PING sooner than 100 ms after the
  // previous one ends the connection.
  ServerOptions options;
  options.keepalive_time = absl::InfiniteDuration();
  options.min_ping_interval = absl::Milliseconds(100);
  options.max_ping_strikes = 0;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  std::unique_ptr<Channel> channel =
      NewChannel(server_->port(), ChannelPinging());
  ASSERT_NE(channel, nullptr);
  const std::string before = PeerSeenByServer(*channel);
  ASSERT_FALSE(before.empty());

  // A call stays open through several pings and nothing fails it.
  PendingCall hang;
  StartCall(*channel, kHang, &hang);
  EXPECT_FALSE(hang.done.WaitForNotificationWithTimeout(absl::Seconds(1)))
      << "the open call ended: " << hang.status;
  EXPECT_EQ(PeerSeenByServer(*channel), before)
      << "the connection was replaced: the server punished the pings";
  channel.reset();  // Ends the open call (CANCELLED) while `hang` lives.
  EXPECT_TRUE(hang.done.HasBeenNotified());
}

// --- Ping-flood defence ---------------------------------------------------

TEST_F(KeepaliveTest, PingFloodGetsGoawayResourceExhaustedAndClose) {
  ASSERT_NO_FATAL_FAILURE(StartServer(ServerOptions()));
  std::unique_ptr<RawClient> bystander = Connect();
  ASSERT_NE(bystander, nullptr);
  ASSERT_NO_FATAL_FAILURE(ExpectEchoWorks(*bystander, 1));
  std::unique_ptr<RawClient> flood = Connect();
  ASSERT_NE(flood, nullptr);

  std::string pings;
  for (int i = 1; i <= 20; ++i) pings += BareFrame(wire::PING, PingPayload(i));
  ASSERT_TRUE(flood->Write(pings).ok());

  // The first PING and max_ping_strikes (2) early ones are answered; the
  // third strike gets GOAWAY.
  for (int i = 1; i <= 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectPong(*flood, PingPayload(i)));
  }
  absl::StatusOr<Frame> goaway = flood->ReadFrame(kReplyTimeout);
  ASSERT_TRUE(goaway.ok()) << "no GOAWAY: " << goaway.status();
  EXPECT_EQ(goaway->meta.kind(), wire::GOAWAY) << DescribeFrame(*goaway);
  EXPECT_EQ(goaway->meta.status_code(),
            Code(absl::StatusCode::kResourceExhausted))
      << DescribeFrame(*goaway);
  EXPECT_TRUE(
      absl::StrContains(goaway->meta.status_message(), "too many pings"))
      << DescribeFrame(*goaway);
  EXPECT_EQ(goaway->meta.last_call_id(), 0u);
  absl::Status closed = flood->WaitForClose(kReplyTimeout);
  EXPECT_TRUE(closed.ok()) << "after GOAWAY: " << closed;

  // The other connection is untouched, and may ping.
  ExpectEchoWorks(*bystander, 2);
  ASSERT_TRUE(bystander->Write(BareFrame(wire::PING, "calm")).ok());
  ExpectPong(*bystander, "calm");
}

TEST_F(KeepaliveTest, PingsAtALegalRateAreNotPunished) {
  ServerOptions options;
  options.min_ping_interval = absl::Milliseconds(100);
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  // Six PINGs 150 ms apart: more than max_ping_strikes (2) + 1, so counting
  // any of them as a strike would end the connection.
  for (int i = 1; i <= 6; ++i) {
    if (i > 1) absl::SleepFor(absl::Milliseconds(150));
    ASSERT_TRUE(client->Write(BareFrame(wire::PING, PingPayload(i))).ok());
    ASSERT_NO_FATAL_FAILURE(ExpectPong(*client, PingPayload(i)));
  }
  ExpectEchoWorks(*client, 1);
}

TEST_F(KeepaliveTest, ResponsesResetPingStrikes) {
  ASSERT_NO_FATAL_FAILURE(StartServer(ServerOptions()));
  std::unique_ptr<RawClient> client = Connect();
  ASSERT_NE(client, nullptr);
  // Ten PINGs well within min_ping_interval (10 s) of each other, each
  // followed by a call: a busy connection may ping as it likes.
  for (uint64_t i = 1; i <= 10; ++i) {
    const std::string text = absl::StrCat("busy ", i);
    ASSERT_TRUE(client
                    ->Write(BareFrame(wire::PING, PingPayload(i)) +
                            RequestFrame(i, kEcho, text))
                    .ok());
    bool pong = false, response = false;
    for (int n = 0; n < 2; ++n) {
      absl::StatusOr<Frame> frame = client->ReadFrame(kReplyTimeout);
      ASSERT_TRUE(frame.ok()) << "round " << i << ": " << frame.status();
      if (frame->meta.kind() == wire::PONG) {
        EXPECT_EQ(frame->payload, PingPayload(i));
        pong = true;
      } else {
        ExpectEchoResponse(*frame, i, text);
        response = true;
      }
    }
    ASSERT_TRUE(pong && response) << "round " << i;
  }
  // Without data in between, the limit still holds on this connection.
  std::string pings;
  for (int i = 11; i <= 14; ++i) pings += BareFrame(wire::PING, PingPayload(i));
  ASSERT_TRUE(client->Write(pings).ok());
  for (int i = 11; i <= 13; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectPong(*client, PingPayload(i)));
  }
  absl::StatusOr<Frame> goaway = client->ReadFrame(kReplyTimeout);
  ASSERT_TRUE(goaway.ok()) << goaway.status();
  EXPECT_EQ(goaway->meta.kind(), wire::GOAWAY) << DescribeFrame(*goaway);
  EXPECT_EQ(goaway->meta.status_code(),
            Code(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(goaway->meta.last_call_id(), 10u);
}

}  // namespace
}  // namespace bevrpc
