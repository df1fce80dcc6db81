// A client that stops reading while the server streams 1 GiB to it: the
// server's memory stays bounded (its handler is held back by the stream's
// credit and the connection's write watermarks), a client on another
// connection is served meanwhile, and the stream resumes and completes once
// the client reads again.
//
// The server is the real echo_server binary (a child process), so its RSS
// is measured alone: baseline after start-up, then VmHWM (the peak) at the
// end. Sanitizer builds stream 64 MiB and only report the figures: their
// allocators quarantine freed memory, so RSS there says nothing about what
// is live.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "services/echo/echo.bevrpc.h"
#include "tests/testing/server_process.h"

namespace bevrpc {
namespace {

// Growth of the server's peak RSS over its start-up RSS allowed while 1 GiB
// streams through it.
constexpr int64_t kMaxGrowthKiB = 64 * 1024;

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

TEST(SlowReaderTest, ServerMemoryStaysBoundedAndTheStreamResumes) {
  auto server =
      testing::ServerProcess::Start("services/echo/echo_server", {"--port=0"});
  ASSERT_TRUE(server.ok()) << server.status();
  const pid_t pid = (*server)->pid();
  const std::string addr = absl::StrCat("127.0.0.1:", (*server)->port());

  auto reader_channel = Channel::Create(addr);
  auto other_channel = Channel::Create(addr);
  ASSERT_TRUE(reader_channel.ok() && other_channel.ok());
  echo::Echo::Stub reader(reader_channel->get());
  echo::Echo::Stub other(other_channel->get());
  echo::EchoRequest ping;
  ping.set_message("ping");
  ASSERT_TRUE(other.Echo(ping).ok());
  const int64_t baseline_kib = StatusKiB(pid, "VmRSS");
  ASSERT_GT(baseline_kib, 0);

  const uint32_t kSize = 64 * 1024;
  const uint64_t count = SanitizerBuild() ? 1024 : 16 * 1024;  // 64 MiB / 1 GiB
  echo::ExpandRequest expand;
  expand.set_count(count);
  expand.set_size(kSize);
  auto stream = reader.Expand(expand);

  // Stall: read nothing for a while. The other connection is served, fast.
  absl::Duration worst = absl::ZeroDuration();
  for (int i = 0; i < 20; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    CallOptions options;
    options.timeout = absl::Seconds(2);
    const absl::Time start = absl::Now();
    absl::StatusOr<echo::EchoResponse> r = other.Echo(ping, options);
    ASSERT_TRUE(r.ok()) << r.status();
    worst = std::max(worst, absl::Now() - start);
  }
  const int64_t stalled_kib = StatusKiB(pid, "VmRSS");

  // Resume: everything arrives, in full.
  echo::EchoResponse message;
  uint64_t received = 0;
  const absl::Time read_start = absl::Now();
  while (stream->Read(&message)) {
    ASSERT_EQ(message.message().size(), kSize);
    ++received;
  }
  const absl::Duration read_time = absl::Now() - read_start;
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(received, count);
  // The kernel folds per-thread RSS counts in lazily, so VmHWM can trail a
  // VmRSS sampled earlier: take the larger.
  const int64_t peak_kib = std::max(StatusKiB(pid, "VmHWM"), stalled_kib);

  std::printf(
      "streamed %llu MiB: server RSS %lld KiB at start, %lld KiB while the "
      "client read nothing, peak %lld KiB (growth %lld KiB); read in %s; "
      "slowest call on another connection during the stall: %s\n",
      static_cast<unsigned long long>(count * kSize >> 20),
      static_cast<long long>(baseline_kib), static_cast<long long>(stalled_kib),
      static_cast<long long>(peak_kib),
      static_cast<long long>(peak_kib - baseline_kib),
      absl::FormatDuration(read_time).c_str(),
      absl::FormatDuration(worst).c_str());
  EXPECT_LT(worst, absl::Seconds(1));
  if (!SanitizerBuild()) {
    EXPECT_LT(peak_kib - baseline_kib, kMaxGrowthKiB);
  }
  stream.reset();
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace
}  // namespace bevrpc
