#include "tests/testing/slow_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/client_stream.h"
#include "rpc/server_options.h"
#include "services/echo/echo.bevrpc.h"
#include "tests/testing/server_process.h"

namespace bevrpc::testing {
namespace {

constexpr uint32_t kSize = 64 * 1024;
constexpr uint64_t kCount = 2048;  // 128 MiB.
// RSS growth that is not the stream's: allocator arenas and caches, the
// other connection, per-thread state touched for the first time.
constexpr int64_t kSlackKiB = 16 * 1024;
// The stream must dwarf the bound, or the bound proves nothing.
static_assert(kCount * kSize / 1024 >= 4 * (kSlackKiB + 1024),
              "the stream must be far larger than the bound");
// Echo calls on the other connection while the reader is stalled.
constexpr int kCalls = 20;

using ExpandStream = ClientStream<echo::ExpandRequest, echo::EchoResponse>;

// Stall: read nothing until the server's RSS has not grown for 300 ms.
// Nothing signals that the server has stopped producing, so this waits to
// prove a negative; a server that buffered the stream would grow to it
// and then stop, and the bound would catch it. (Nothing else runs
// meanwhile: a sanitizer's quarantine grows with every call.) Sets
// `*stalled_kib` to the largest RSS seen.
void WaitWhileRssGrows(pid_t pid, int64_t* stalled_kib) {
  *stalled_kib = ProcStatusKiB(pid, "VmRSS");
  absl::Time quiet_since = absl::Now();
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (absl::Now() - quiet_since < absl::Milliseconds(300)) {
    ASSERT_LT(absl::Now(), until)
        << "server RSS still growing: " << *stalled_kib << " KiB";
    absl::SleepFor(absl::Milliseconds(10));
    const int64_t now_kib = ProcStatusKiB(pid, "VmRSS");
    if (now_kib > *stalled_kib) {
      *stalled_kib = now_kib;
      quiet_since = absl::Now();
    }
  }
}

// kCalls echo calls on `other`, each answered with its own message.
void EchoOnOtherConnection(echo::Echo::Stub& other,
                           const CallOptions& options) {
  echo::EchoRequest ping;
  for (int i = 0; i < kCalls; ++i) {
    ping.set_message(absl::StrCat("ping ", i));
    absl::StatusOr<echo::EchoResponse> r = other.Echo(ping, options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->message(), ping.message());
  }
}

// Resume: everything arrives, in full.
void ReadToTheEnd(ExpandStream& stream) {
  echo::EchoResponse message;
  uint64_t received = 0;
  while (stream.Read(&message)) {
    ASSERT_EQ(message.message().size(), kSize);
    ++received;
  }
  EXPECT_TRUE(stream.Finish().ok());
  EXPECT_EQ(received, kCount);
}

// Prints the figures and checks the server's peak growth (not in sanitizer
// builds).
void CheckPeak(pid_t pid, int64_t baseline_kib, int64_t stalled_kib,
               int64_t extra_slack_kib) {
  // The kernel folds per-thread RSS counts in lazily, so VmHWM can trail a
  // VmRSS sampled earlier: take the larger.
  const int64_t peak_kib = std::max(ProcStatusKiB(pid, "VmHWM"), stalled_kib);
  const int64_t bound_kib =
      static_cast<int64_t>(ChannelOptions().stream_window_bytes +
                           ServerOptions().stream_write_buffer_bytes +
                           2 * kSize) /
          1024 +
      kSlackKiB + extra_slack_kib;
  std::printf(
      "streamed %llu MiB: server RSS %lld KiB at start, %lld KiB while the "
      "client read nothing, peak %lld KiB (growth %lld KiB, bound %lld KiB); "
      "%d calls on another connection during the stall\n",
      static_cast<unsigned long long>(kCount * kSize >> 20),
      static_cast<long long>(baseline_kib), static_cast<long long>(stalled_kib),
      static_cast<long long>(peak_kib),
      static_cast<long long>(peak_kib - baseline_kib),
      static_cast<long long>(bound_kib), kCalls);
  if (!SanitizerBuild()) {
    EXPECT_LT(peak_kib - baseline_kib, bound_kib);
  }
}

}  // namespace

int64_t ProcStatusKiB(pid_t pid, const std::string& field) {
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

bool SanitizerBuild() {
  return std::getenv("ASAN_OPTIONS") != nullptr ||
         std::getenv("TSAN_OPTIONS") != nullptr;
}

void RunSlowReaderCheck(const SlowReaderSetup& setup) {
  std::vector<std::string> flags = {"--port=0"};
  flags.insert(flags.end(), setup.server_flags.begin(),
               setup.server_flags.end());
  auto server = ServerProcess::Start("services/echo/echo_server", flags);
  ASSERT_TRUE(server.ok()) << server.status();
  const pid_t pid = (*server)->pid();
  const std::string addr = absl::StrCat(setup.host, ":", (*server)->port());

  auto reader_channel = Channel::Create(addr, setup.channel_options);
  auto other_channel = Channel::Create(addr, setup.channel_options);
  ASSERT_TRUE(reader_channel.ok() && other_channel.ok());
  echo::Echo::Stub reader(reader_channel->get());
  echo::Echo::Stub other(other_channel->get());
  echo::EchoRequest ping;
  ping.set_message("ping");
  CallOptions options;
  options.timeout = absl::Seconds(10);  // A hang guard.
  ASSERT_TRUE(other.Echo(ping, options).ok());
  const int64_t baseline_kib = ProcStatusKiB(pid, "VmRSS");
  ASSERT_GT(baseline_kib, 0);

  echo::ExpandRequest expand;
  expand.set_count(kCount);
  expand.set_size(kSize);
  std::unique_ptr<ExpandStream> stream = reader.Expand(expand);
  int64_t stalled_kib = 0;
  WaitWhileRssGrows(pid, &stalled_kib);
  if (::testing::Test::HasFatalFailure()) return;
  // Still stalled: the other connection is served.
  EchoOnOtherConnection(other, options);
  if (::testing::Test::HasFatalFailure()) return;
  ReadToTheEnd(*stream);
  if (::testing::Test::HasFatalFailure()) return;
  CheckPeak(pid, baseline_kib, stalled_kib, setup.extra_slack_kib);
  stream.reset();
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace bevrpc::testing
