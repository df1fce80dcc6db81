// The slow-reader test (tests/e2e/slow_reader_test.cc) over TLS: the
// server's TLS connections still apply backpressure (libevent's OpenSSL
// bufferevent honours the read watermark, overshooting by at most a TLS
// record), so a client that stops reading while the server streams to it
// keeps the server's memory bounded.
//
// A client that stops reading while the server streams to it: the server's
// memory stays bounded (its handler is held back by the stream's credit),
// a client on another connection is served meanwhile, and the stream
// resumes and completes once the client reads again.
//
// The server is the real echo_server binary (a child process), so its RSS
// is measured alone: baseline after start-up, then VmHWM (the peak) at the
// end. The bound comes from the options: what the client's window lets the
// server send unread, the server's per-call write buffer and a message in
// hand, plus allocator slack; the stream is several times larger, so a
// server that buffered it would be far over. Sanitizer builds only report
// the figures: their allocators quarantine freed memory, so RSS there says
// nothing about what is live.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/server_options.h"
#include "services/echo/echo.bevrpc.h"
#include "tests/testing/server_process.h"
#include "tests/testing/test_certs.h"

namespace bevrpc {
namespace {

// TLS buffers (OpenSSL's record buffers, one record of read-ahead past the
// watermark) on top of the plaintext test's slack.
constexpr int64_t kTlsSlackKiB = 1024;

constexpr uint32_t kSize = 64 * 1024;
constexpr uint64_t kCount = 2048;  // 128 MiB.
// RSS growth that is not the stream's: allocator arenas and caches, the
// other connection, per-thread state touched for the first time.
constexpr int64_t kSlackKiB = 16 * 1024;

bool SanitizerBuild() {
  return std::getenv("ASAN_OPTIONS") != nullptr ||
         std::getenv("TSAN_OPTIONS") != nullptr;
}

// A "VmRSS:" style field of /proc/PID/status, in KiB; -1 if absent.
int64_t StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::vector<std::string> parts =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kib;
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
  }
  return -1;
}

TEST(TlsSlowReaderTest, ServerMemoryStaysBoundedAndTheStreamResumes) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/tls_slow_reader");
  mkdir(dir.c_str(), 0700);
  absl::StatusOr<testing::TestCerts> certs = testing::WriteTestCerts(dir);
  ASSERT_TRUE(certs.ok()) << certs.status();
  auto server = testing::ServerProcess::Start(
      "services/echo/echo_server",
      {"--port=0", absl::StrCat("--tls_cert=", certs->server_cert),
       absl::StrCat("--tls_key=", certs->server_key)});
  ASSERT_TRUE(server.ok()) << server.status();
  const pid_t pid = (*server)->pid();
  const std::string addr = absl::StrCat("localhost:", (*server)->port());

  ChannelOptions tls;
  tls.tls.ca_file = certs->ca_cert;
  auto reader_channel = Channel::Create(addr, tls);
  auto other_channel = Channel::Create(addr, tls);
  ASSERT_TRUE(reader_channel.ok() && other_channel.ok());
  echo::Echo::Stub reader(reader_channel->get());
  echo::Echo::Stub other(other_channel->get());
  echo::EchoRequest ping;
  ping.set_message("ping");
  CallOptions options;
  options.timeout = absl::Seconds(10);  // A hang guard.
  ASSERT_TRUE(other.Echo(ping, options).ok());
  const int64_t baseline_kib = StatusKiB(pid, "VmRSS");
  ASSERT_GT(baseline_kib, 0);

  echo::ExpandRequest expand;
  expand.set_count(kCount);
  expand.set_size(kSize);
  auto stream = reader.Expand(expand);

  // Stall: read nothing until the server's RSS has not grown for 300 ms.
  // Nothing signals that the server has stopped producing, so this waits to
  // prove a negative; a server that buffered the stream would grow to it
  // and then stop, and the bound below would catch it. (Nothing else runs
  // meanwhile: a sanitizer's quarantine grows with every call.)
  int64_t stalled_kib = StatusKiB(pid, "VmRSS");
  absl::Time quiet_since = absl::Now();
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (absl::Now() - quiet_since < absl::Milliseconds(300)) {
    ASSERT_LT(absl::Now(), until) << "server RSS still growing: "
                                  << stalled_kib << " KiB";
    absl::SleepFor(absl::Milliseconds(10));
    const int64_t now_kib = StatusKiB(pid, "VmRSS");
    if (now_kib > stalled_kib) {
      stalled_kib = now_kib;
      quiet_since = absl::Now();
    }
  }
  // Still stalled: the other connection is served.
  constexpr int kCalls = 20;
  for (int i = 0; i < kCalls; ++i) {
    ping.set_message(absl::StrCat("ping ", i));
    absl::StatusOr<echo::EchoResponse> r = other.Echo(ping, options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->message(), ping.message());
  }

  // Resume: everything arrives, in full.
  echo::EchoResponse message;
  uint64_t received = 0;
  while (stream->Read(&message)) {
    ASSERT_EQ(message.message().size(), kSize);
    ++received;
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(received, kCount);
  // The kernel folds per-thread RSS counts in lazily, so VmHWM can trail a
  // VmRSS sampled earlier: take the larger.
  const int64_t peak_kib = std::max(StatusKiB(pid, "VmHWM"), stalled_kib);
  const int64_t bound_kib =
      static_cast<int64_t>(ChannelOptions().stream_window_bytes +
                           ServerOptions().stream_write_buffer_bytes +
                           2 * kSize) /
          1024 +
      kSlackKiB + kTlsSlackKiB;

  std::printf(
      "streamed %llu MiB: server RSS %lld KiB at start, %lld KiB while the "
      "client read nothing, peak %lld KiB (growth %lld KiB, bound %lld KiB); "
      "%d calls on another connection during the stall\n",
      static_cast<unsigned long long>(kCount * kSize >> 20),
      static_cast<long long>(baseline_kib), static_cast<long long>(stalled_kib),
      static_cast<long long>(peak_kib),
      static_cast<long long>(peak_kib - baseline_kib),
      static_cast<long long>(bound_kib), kCalls);
  // The stream must dwarf the bound, or the bound proves nothing.
  static_assert(kCount * kSize / 1024 >= 4 * (kSlackKiB + 1024),
                "the stream must be far larger than the bound");
  if (!SanitizerBuild()) {
    EXPECT_LT(peak_kib - baseline_kib, bound_kib);
  }
  stream.reset();
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace
}  // namespace bevrpc
