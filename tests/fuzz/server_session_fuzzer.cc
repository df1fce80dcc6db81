// Fuzz target: a real bevrpc::Server (the echo service) fed arbitrary
// bytes by a client over loopback TCP.
//
// One server serves every input (started on the first). Per input, a new
// connection writes the input while reading what the server sends,
// half-closes, and reads until the server closes. Checked:
//   - the server closes the connection within a bounded time (no hang),
//     after answering or not;
//   - whatever it sent is a sequence of well-formed wire-v1 frames (a cut
//     at the very end is allowed: the connection may have been closed with
//     output pending);
//   - the session goes away (num_connections() falls back), and a fresh,
//     well-formed Echo call on another connection still succeeds.
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

  absl::Time deadline = absl::Now() + bevrpc::kTimeout;
  int fd = bevrpc::fuzz::ConnectLoopback(fixture->server->port(), deadline);
  FUZZ_CHECK(fd >= 0, "cannot connect to the server");
  std::string received;
  absl::Status s = bevrpc::fuzz::Exchange(
      fd,
      absl::string_view(reinterpret_cast<const char*>(data), size),
      deadline, &received);
  bevrpc::fuzz::ResetAndClose(fd);
  FUZZ_CHECK(s.ok(), "server did not close the connection within "
                         << bevrpc::kTimeout << ": " << s);
  bevrpc::CheckFrames(received);
  bevrpc::WaitForSessionGone(*fixture);
  bevrpc::CheckStillServing(*fixture);
  return 0;
}
