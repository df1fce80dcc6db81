// Fuzz target: a real bevrpc::Server (the echo service) fed arbitrary
// bytes by a client over loopback TCP.
//
// One server serves every input (started on the first). Per input, a new
// connection writes the input, completed to a whole number of frames (a
// cut-off frame is padded with zero bytes, up to 64 KiB), then a PING,
// while reading what the server sends; then it resets the connection.
// Checked:
//   - within a bounded time the server answers the PING (so it has handled
//     every frame of the input and its loop still reads) or closes the
//     connection (GOAWAY for a protocol error, a defence's limit);
//   - whatever it sent is a sequence of well-formed wire-v1 frames;
//   - once the connection is reset the session goes away
//     (num_connections() falls back), and fresh, well-formed calls on
//     another connection still succeed.
// An input ending in a frame too large to pad gets no PING; only the last
// two checks apply.
//
// Besides echo (callback handlers, on the I/O loop), the server has
// sync-flavour methods on a one-thread worker pool, bevrpc.fuzz.Sync/Echo,
// /Expand (server streaming, blocking writes) and /Chat (bidirectional,
// blocking reads and writes); the well-formed call after each input goes
// to both flavours, so a worker left blocked by a closed connection shows.
// Small per-connection budgets (concurrent calls, early cancels) put the
// defences' GOAWAY paths within reach of short inputs; a 64 KiB message
// limit keeps streams from spending the time on multi-megabyte messages.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rpc/channel.h"
#include "google/protobuf/stubs/logging.h"
#include "rpc/frame_codec.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/wire_format.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/socket_util.h"
#include "transport/buffer.h"

namespace bevrpc {
namespace {

// Generous: a loaded CI machine with sanitizers is slow, a hang is forever.
constexpr absl::Duration kTimeout = absl::Seconds(10);

using echo::EchoRequest;
using echo::EchoResponse;
using echo::ExpandRequest;

constexpr char kSyncEcho[] = "bevrpc.fuzz.Sync/Echo";

absl::Status SyncEcho(ServerContext&, const EchoRequest& request,
                      EchoResponse* response) {
  if (request.fail_code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(request.fail_code()),
                        request.fail_message());
  }
  response->set_message(request.message());
  return absl::OkStatus();
}

absl::Status SyncExpand(ServerContext&, const ExpandRequest& request,
                        ServerWriter<EchoResponse>& writer) {
  EchoResponse message;
  message.set_message(std::string(std::min<uint32_t>(request.size(), 4096), 'x'));
  for (uint64_t i = 0; i < std::min<uint64_t>(request.count(), 64); ++i) {
    absl::Status s = writer.WriteBlocking(message);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SyncChat(ServerContext&,
                      ServerReaderWriter<EchoRequest, EchoResponse>& stream) {
  EchoRequest request;
  while (stream.Read(&request)) {
    EchoResponse response;
    response.set_message(request.message());
    absl::Status s = stream.WriteBlocking(response);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void RegisterSyncMethods(Server& server) {
  absl::Status s = server.RegisterMethod(
      SyncMethod<EchoRequest, EchoResponse>(kSyncEcho, SyncEcho));
  FUZZ_CHECK(s.ok(), s);
  s = server.RegisterMethod(ServerStreamingSyncMethod<ExpandRequest, EchoResponse>(
      "bevrpc.fuzz.Sync/Expand", SyncExpand));
  FUZZ_CHECK(s.ok(), s);
  s = server.RegisterMethod(BidiStreamingSyncMethod<EchoRequest, EchoResponse>(
      "bevrpc.fuzz.Sync/Chat", SyncChat));
  FUZZ_CHECK(s.ok(), s);
}

struct Fixture {
  std::unique_ptr<Server> server;
  std::unique_ptr<Channel> channel;
};

Fixture* StartFixture() {
  google::protobuf::SetLogHandler(nullptr);  // Invalid UTF-8 is expected.
  auto* f = new Fixture;
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.io_threads = 1;
  options.worker_threads = 1;
  // Echo's Expand would otherwise stream 4 MiB messages: slow, and not
  // what is being tested. Larger messages fail their call instead.
  options.limits.max_message_bytes = 64 * 1024;
  options.max_concurrent_calls_per_connection = 8;
  options.early_cancel_burst = 4;
  // Everything sent back must be bevrpc frames: an input starting with an
  // HTTP method would get an HTTP answer (http_request_parser_fuzzer and
  // tests/e2e/admin cover that side).
  options.http = HttpMode::kOff;
  f->server = std::make_unique<Server>(options);
  absl::Status s = echo::RegisterEchoService(*f->server);
  FUZZ_CHECK(s.ok(), s);
  RegisterSyncMethods(*f->server);
  s = f->server->Start();
  FUZZ_CHECK(s.ok(), s);
  auto channel =
      Channel::Create(absl::StrCat("127.0.0.1:", f->server->port()));
  FUZZ_CHECK(channel.ok(), channel.status());
  f->channel = *std::move(channel);
  return f;
}

// Counts frames; remembers the first decoding error.
class CountingSink : public FrameSink {
 public:
  void OnFrame(wire::FrameMeta&, transport::Buffer&, size_t) override {
    ++frames;
  }
  void OnOversizedFrame(const wire::FrameMeta&, uint64_t) override {
    ++frames;
  }
  int frames = 0;
};

void CheckFrames(const std::string& bytes) {
  FrameLimits limits;
  limits.max_message_bytes = UINT32_MAX;  // Ours, not the server's, limit.
  FrameDecoder decoder(limits);
  CountingSink sink;
  transport::Buffer buf;
  buf.Append(bytes);
  absl::StatusOr<size_t> wanted = decoder.Decode(buf, sink);
  FUZZ_CHECK(wanted.ok(), "server sent a malformed frame after "
                              << sink.frames << " frames: "
                              << wanted.status());
}

// The PING sent after the input, and the largest cut-off frame padded to
// make room for it.
constexpr uint64_t kProbeCounter = 0x62766670726f6265;  // "bvfprobe"
constexpr size_t kMaxPadding = 64 * 1024;

// `*out` = `input`, its last frame completed with zero bytes, then the
// probe PING. False (and `*out` = `input`) when that frame is too large.
bool WithProbe(absl::string_view input, std::string* out) {
  out->assign(input.data(), input.size());
  size_t pos = 0;
  while (pos < out->size()) {
    if (out->size() - pos < wire::kHeaderSize) {
      out->append(pos + wire::kHeaderSize - out->size(), '\0');
    }
    uint64_t frame = wire::kHeaderSize +
                     uint64_t{wire::GetBigEndian32(out->data() + pos + 4)};
    if (out->size() - pos < frame) {
      uint64_t missing = frame - (out->size() - pos);
      if (missing > kMaxPadding) {
        out->assign(input.data(), input.size());
        return false;
      }
      out->append(missing, '\0');
    }
    pos += frame;
  }
  transport::Buffer ping;
  AppendPing(ping, kProbeCounter);
  *out += ping.TakeString(ping.size());
  return true;
}

// Decodes the server's bytes as they arrive; Done() once the PONG to the
// probe (or a malformed frame, left to CheckFrames) has come.
class ProbeWatcher : public FrameSink {
 public:
  bool Done(const std::string& in) {
    buffer_.Append(in.data() + fed_, in.size() - fed_);
    fed_ = in.size();
    if (!failed_ && !pong_) failed_ = !decoder_.Decode(buffer_, *this).ok();
    return pong_ || failed_;
  }
  void OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
               size_t payload_size) override {
    char payload[8];
    if (meta.kind() == wire::PONG && payload_size == sizeof(payload) &&
        input.Peek(payload, sizeof(payload)) == sizeof(payload) &&
        (uint64_t{wire::GetBigEndian32(payload)} << 32 |
         wire::GetBigEndian32(payload + 4)) == kProbeCounter) {
      pong_ = true;
    }
  }
  void OnOversizedFrame(const wire::FrameMeta&, uint64_t) override {}

 private:
  static FrameLimits Unlimited() {
    FrameLimits limits;
    limits.max_message_bytes = UINT32_MAX;
    return limits;
  }
  FrameDecoder decoder_{Unlimited()};
  transport::Buffer buffer_;
  size_t fed_ = 0;
  bool pong_ = false;
  bool failed_ = false;
};

void CheckStillServing(Fixture& f) {
  EchoRequest request;
  request.set_message("still there?");
  CallOptions options;
  options.timeout = kTimeout;
  for (const char* method : {echo::kEchoMethod, kSyncEcho}) {
    EchoResponse response;
    absl::Status s = f.channel->Call(method, request, &response, options);
    FUZZ_CHECK(s.ok() && response.message() == request.message(),
               "well-formed call to " << method << " after the input: " << s);
  }
}

// The fuzzed connection's session is gone: only the channel's remains.
void WaitForSessionGone(Fixture& f) {
  absl::Time deadline = absl::Now() + kTimeout;
  while (f.server->num_connections() > 1) {
    FUZZ_CHECK(absl::Now() < deadline,
               f.server->num_connections()
                   << " connections open after the fuzzed one closed");
    absl::SleepFor(absl::Microseconds(50));  // Polling, bounded above.
  }
}

}  // namespace
}  // namespace bevrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bevrpc::Fixture* fixture = bevrpc::StartFixture();
  // Connect the channel first, so the session count below is exact.
  static bool warmed_up = (bevrpc::CheckStillServing(*fixture), true);
  (void)warmed_up;

  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::string out;
  bool probed = bevrpc::WithProbe(input, &out);
  absl::Time deadline = absl::Now() + bevrpc::kTimeout;
  int fd = bevrpc::fuzz::ConnectLoopback(fixture->server->port(), deadline);
  FUZZ_CHECK(fd >= 0, "cannot connect to the server");
  std::string received;
  bevrpc::ProbeWatcher watcher;
  absl::Status s = bevrpc::fuzz::ExchangeUntil(
      fd, out, deadline, &received, [&](const std::string& in) {
        return !probed || watcher.Done(in);
      });
  bevrpc::fuzz::ResetAndClose(fd);
  FUZZ_CHECK(s.ok(), "server neither answered the PING after the input nor "
                     "closed the connection within "
                         << bevrpc::kTimeout << ": " << s);
  bevrpc::CheckFrames(received);
  bevrpc::WaitForSessionGone(*fixture);
  bevrpc::CheckStillServing(*fixture);
  return 0;
}
