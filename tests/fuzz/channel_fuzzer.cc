// Fuzz target: a bevrpc::Channel fed arbitrary bytes by its "server".
//
// A fake server (a plain loopback socket on its own thread) accepts the
// channel's connection, reads the client's first frames, answers with the
// fuzz input whatever it asked, half-closes, and waits for the client to
// close. Any other connection in the same round is reset. Per input a new
// Channel (on one shared I/O loop, so call ids start at 1 every time)
// makes three calls:
//   1. Echo, unary, no deadline;
//   2. Echo, unary, with a 5 s deadline;
//   3. Chat, a bidirectional stream: one message, half-close, read to the
//      end;
// so inputs can answer, interleave, stream to and abort calls 1-3. Checked:
// every call completes (with any status), and the stream's reader reaches
// the end, within a bounded time after the server closed its side; the
// client then lets go of the connection (the fake server sees it close).
#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/method.h"
#include "services/echo/echo.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/socket_util.h"
#include "transport/loop_pool.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

constexpr char kEchoMethod[] = "bevrpc.echo.Echo/Echo";
constexpr char kChatMethod[] = "bevrpc.echo.Echo/Chat";
// Generous: a loaded CI machine with sanitizers is slow, a hang is forever.
constexpr absl::Duration kTimeout = absl::Seconds(10);
// The frames the client sends first: two REQUESTs, the stream's REQUEST,
// MESSAGE and HALF_CLOSE. The fake server answers once it has them.
constexpr int kClientFrames = 5;

// The fake server: serves the first connection of each round with that
// round's input; resets the others.
class FakeServer {
 public:
  FakeServer() {
    listener_ = fuzz::ListenLoopback(&port_);
    FUZZ_CHECK(listener_ >= 0, "cannot listen on 127.0.0.1");
    thread_ = std::thread([this] { Run(); });
  }

  int port() const { return port_; }

  // Starts a round: the next connection gets `input`.
  void BeginRound(std::string input) {
    MutexLock lock(&mu_);
    input_ = std::move(input);
    ++round_;
  }

  // Waits until no connection is being served; returns the status of the
  // round's exchange (not OK if the client kept its connection open after
  // the server closed its side).
  absl::Status EndRound() {
    MutexLock lock(&mu_);
    if (!cv_.WaitUntil(&mu_, kTimeout, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return !busy_;
        })) {
      return absl::DeadlineExceededError("fake server still serving");
    }
    absl::Status s = round_status_;
    round_status_ = absl::OkStatus();
    return s;
  }

 private:
  void Run() {
    while (true) {
      int fd = AcceptWithin(absl::Milliseconds(100));
      if (fd < 0) continue;
      std::string input;
      uint64_t round;
      {
        MutexLock lock(&mu_);
        if (served_round_ == round_) {  // Already served: refuse.
          fuzz::ResetAndClose(fd);
          continue;
        }
        input = input_;
        round = round_;
        busy_ = true;
      }
      Serve(fd, input, round);
    }
  }

  int AcceptWithin(absl::Duration timeout) {
    int fd = fuzz::AcceptNonBlocking(listener_);
    if (fd >= 0) return fd;
    pollfd p{listener_, POLLIN, 0};
    poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    return fuzz::AcceptNonBlocking(listener_);
  }

  void Serve(int fd, const std::string& input, uint64_t round) {
    absl::Time deadline = absl::Now() + kTimeout;
    std::string request;
    absl::Status s =
        fuzz::ReadFrames(fd, kClientFrames, deadline, &request, listener_);
    absl::Status exchange = absl::OkStatus();
    bool served = !request.empty();
    if (served) {
      std::string ignored;
      exchange = fuzz::Exchange(fd, input, deadline, &ignored, listener_);
    }
    fuzz::ResetAndClose(fd);
    MutexLock lock(&mu_);
    // A connection that sent nothing is a stale one: keep waiting.
    if (served) served_round_ = round;
    if (!exchange.ok()) round_status_ = exchange;
    busy_ = false;
    cv_.SignalAll();
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;  // Runs for the life of the process.
  // bevrpc's std::mutex-based types: TSan sees them (Debian's Abseil is not
  // built for TSan, so it cannot follow absl::Mutex).
  Mutex mu_;
  CondVar cv_;
  std::string input_ ABSL_GUARDED_BY(mu_);
  uint64_t round_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t served_round_ ABSL_GUARDED_BY(mu_) = 0;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status round_status_ ABSL_GUARDED_BY(mu_);
};

// Counts completions; waits for all of them with a timeout.
class Completions {
 public:
  explicit Completions(int expected) : left_(expected) {}
  void Done(absl::string_view what, absl::Status status) {
    MutexLock lock(&mu_);
    --left_;
    absl::StrAppend(&log_, what, ": ", status.ToString(), "; ");
    cv_.SignalAll();
  }
  bool Wait(absl::Duration timeout) {
    MutexLock lock(&mu_);
    return cv_.WaitUntil(&mu_, timeout,
                         [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                           return left_ == 0;
                         });
  }
  std::string log() {
    MutexLock lock(&mu_);
    return log_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  int left_ ABSL_GUARDED_BY(mu_);
  std::string log_ ABSL_GUARDED_BY(mu_);
};

using ChatStream = ClientStream<EchoRequest, EchoResponse>;

// Reads a stream to its end on the I/O thread; Done("reader") at the end.
void DrainOnReadable(ChatStream* stream, Completions* completions) {
  stream->OnReadable([stream, completions] {
    EchoResponse message;
    while (stream->TryRead(&message)) {
    }
    if (stream->AtEnd()) {
      completions->Done("reader", absl::OkStatus());
    } else {
      DrainOnReadable(stream, completions);
    }
  });
}

struct Fixture {
  std::unique_ptr<transport::LoopPool> loops;
  FakeServer server;
};

Fixture* StartFixture() {
  google::protobuf::SetLogHandler(nullptr);  // Invalid UTF-8 is expected.
  auto* f = new Fixture;
  auto loops = transport::LoopPool::Start(1, "fuzz-io");
  FUZZ_CHECK(loops.ok(), loops.status());
  f->loops = *std::move(loops);
  return f;
}

void RunRound(Fixture& f, std::string input) {
  f.server.BeginRound(std::move(input));
  ChannelOptions options;
  options.loops = f.loops.get();
  options.connect_timeout = kTimeout;
  auto channel = Channel::Create(
      absl::StrCat("127.0.0.1:", f.server.port()), options);
  FUZZ_CHECK(channel.ok(), channel.status());

  Completions completions(4);
  EchoRequest request;
  request.set_message("hello");
  EchoResponse response1, response2;
  Metadata trailers;
  (*channel)->CallAsync(kEchoMethod, request, &response1, CallOptions(),
                        [&](absl::Status s) { completions.Done("call 1", s); },
                        &trailers);
  CallOptions with_deadline;
  with_deadline.timeout = absl::Seconds(5);
  (*channel)->CallAsync(kEchoMethod, request, &response2, with_deadline,
                        [&](absl::Status s) { completions.Done("call 2", s); });
  std::unique_ptr<ChatStream> stream =
      ChatStream::Open(**channel, kChatMethod, MethodKind::kBidiStreaming);
  stream->Write(request);
  stream->CloseSend();
  stream->OnDone([&](absl::Status s) { completions.Done("stream", s); });
  DrainOnReadable(stream.get(), &completions);

  FUZZ_CHECK(completions.Wait(kTimeout),
             "calls still open " << kTimeout << " after the server closed; "
                                 << "completed: " << completions.log());
  stream.reset();
  channel->reset();
  absl::Status s = f.server.EndRound();
  FUZZ_CHECK(s.ok(), "client did not close its connection: " << s);
}

}  // namespace
}  // namespace bevrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bevrpc::Fixture* fixture = bevrpc::StartFixture();
  bevrpc::RunRound(*fixture,
                   std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
