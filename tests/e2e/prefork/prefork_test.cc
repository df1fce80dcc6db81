// echo_server --workers=2 end to end: both workers serve one port, a worker
// killed with SIGKILL is replaced, SIGHUP replaces every worker under load,
// and SIGTERM drains both (an open call completes) and leaves no process.
//
// Load uses fresh connections with no client retries (RawClient), so each
// connect refused, connection reset or GOAWAY before dispatch is counted;
// and a bevrpc Channel (with its transparent retries) whose every failure
// is counted too. No connect may be refused (a listener always exists);
// with net.ipv4.tcp_migrate_req=1 (prefork_netns_test runs the test in a
// fresh network namespace so) no connection may be reset either. Calls
// refused unprocessed by a draining worker's GOAWAY are counted and
// printed, not failed.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/wire.pb.h"
#include "services/builtin/server_info.bevrpc.h"
#include "services/echo/echo.bevrpc.h"
#include "tests/testing/raw_client.h"
#include "tests/testing/server_process.h"

namespace bevrpc {
namespace {

using server::v1::ServerInfo;
using server::v1::ServerInfoResponse;
using testing::RawClient;
using testing::ServerProcess;

std::unique_ptr<ServerProcess> StartPrefork(std::vector<std::string> extra) {
  std::vector<std::string> args = {"--port=0", "--workers=2",
                                   "--id=echo/0"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto server = ServerProcess::Start("services/echo/echo_server", args,
                                     absl::Seconds(30));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

// What one call on a fresh connection, without retries, ran into.
enum class Outcome { kOk, kRefused, kReset, kGoaway, kOther };

struct Counts {
  std::atomic<int> ok{0}, refused{0}, reset{0}, goaway{0}, other{0};
  void Add(Outcome o) {
    switch (o) {
      case Outcome::kOk: ++ok; break;
      case Outcome::kRefused: ++refused; break;
      case Outcome::kReset: ++reset; break;
      case Outcome::kGoaway: ++goaway; break;
      case Outcome::kOther: ++other; break;
    }
  }
  int failed() const { return refused + reset + goaway + other; }
  std::string ToString() const {
    return absl::StrCat("ok=", ok.load(), " refused=", refused.load(),
                        " reset=", reset.load(), " goaway=", goaway.load(),
                        " other=", other.load());
  }
};

// ServerInfo/Get on a new connection, written as raw frames.
Outcome RawGet(int port, ServerInfoResponse* info) {
  auto client = RawClient::Connect(port, absl::Seconds(5));
  if (!client.ok()) return Outcome::kRefused;
  wire::FrameMeta meta;
  meta.set_call_id(1);
  meta.set_kind(wire::REQUEST);
  meta.set_method(ServerInfo::kGetMethod);
  meta.set_timeout_us(5000000);
  if (!(*client)->Write(testing::EncodeFrame(meta, "")).ok()) {
    return Outcome::kReset;
  }
  while (true) {
    absl::StatusOr<testing::Frame> frame = (*client)->ReadFrame();
    if (!frame.ok()) {
      return frame.status().code() == absl::StatusCode::kUnavailable
                 ? Outcome::kReset
                 : Outcome::kOther;
    }
    if (frame->meta.kind() == wire::GOAWAY) {
      if (frame->meta.last_call_id() < 1) return Outcome::kGoaway;
      continue;  // The call was taken: its answer follows.
    }
    if (frame->meta.kind() != wire::RESPONSE) continue;
    if (frame->meta.status_code() != 0 ||
        !info->ParseFromString(frame->payload)) {
      return Outcome::kOther;
    }
    return Outcome::kOk;
  }
}

// Distinct pids answering `n` calls on fresh connections (each must work).
std::set<int64_t> SamplePids(int port, int n, int64_t master_pid) {
  std::set<int64_t> pids;
  for (int i = 0; i < n; ++i) {
    ServerInfoResponse info;
    EXPECT_EQ(RawGet(port, &info), Outcome::kOk) << "call " << i;
    EXPECT_EQ(info.master_pid(), master_pid);
    EXPECT_EQ(info.id(), "echo/0");
    EXPECT_EQ(info.name(), "echo_server");
    EXPECT_EQ(info.listen_address(), absl::StrCat("127.0.0.1:", port));
    EXPECT_TRUE(info.worker() == 0 || info.worker() == 1) << info.worker();
    pids.insert(info.pid());
  }
  return pids;
}

// The children of `parent`, from /proc/*/stat.
std::set<int64_t> ChildrenOf(pid_t parent) {
  std::set<int64_t> children;
  DIR* dir = opendir("/proc");
  while (dirent* e = dir != nullptr ? readdir(dir) : nullptr) {
    int64_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    // After "pid (comm) ": state, then ppid.
    std::vector<std::string> f =
        absl::StrSplit(stat.substr(paren + 2), ' ');
    int64_t ppid = 0;
    if (f.size() > 1 && absl::SimpleAtoi(f[1], &ppid) && ppid == parent) {
      children.insert(pid);
    }
  }
  if (dir != nullptr) closedir(dir);
  return children;
}

int Threads(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    int n = 0;
    if (absl::StartsWith(line, "Threads:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(8)), &n)) {
      return n;
    }
  }
  return -1;
}

bool Gone(int64_t pid) {
  return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// Polls `done` every 50 ms until it holds or `timeout` passes.
template <typename Fn>
bool WaitFor(Fn done, absl::Duration timeout = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

TEST(PreforkTest, BothWorkersServeAndTheMasterOnlySupervises) {
  auto server = StartPrefork({});
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Threads(server->pid()), 1);  // Single-threaded: fork is safe.
  std::set<int64_t> workers = ChildrenOf(server->pid());
  ASSERT_EQ(workers.size(), 2u);
  std::set<int64_t> pids = SamplePids(server->port(), 200, server->pid());
  EXPECT_EQ(pids, workers);
  EXPECT_EQ(pids.count(server->pid()), 0u);
  EXPECT_TRUE(server->Stop().ok());
  for (int64_t pid : workers) EXPECT_TRUE(Gone(pid)) << pid;
}

TEST(PreforkTest, AKilledWorkerIsReplacedAndTheOtherKeepsServing) {
  auto server = StartPrefork({});
  ASSERT_NE(server, nullptr);
  std::set<int64_t> before = ChildrenOf(server->pid());
  ASSERT_EQ(before.size(), 2u);
  int64_t victim = *before.begin();
  int64_t survivor = *before.rbegin();
  ASSERT_EQ(kill(static_cast<pid_t>(victim), SIGKILL), 0);
  std::set<int64_t> after;
  ASSERT_TRUE(WaitFor([&] {
    after = ChildrenOf(server->pid());
    return after.size() == 2 && after.count(victim) == 0;
  })) << "no replacement for worker " << victim;
  EXPECT_EQ(after.count(survivor), 1u);
  // The replacement serves (it reported ready before the master counted
  // it): fresh connections reach both, and only them.
  std::set<int64_t> seen;
  ASSERT_TRUE(WaitFor([&] {
    std::set<int64_t> s = SamplePids(server->port(), 20, server->pid());
    seen.insert(s.begin(), s.end());
    return seen == after;
  })) << "workers " << *after.begin() << ", " << *after.rbegin();
  EXPECT_TRUE(server->Stop().ok());
}

int MigrateReq() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_migrate_req");
  int v = -1;
  in >> v;
  return v;
}

TEST(PreforkTest, SighupReplacesEveryWorkerWithoutRefusedConnections) {
  auto server = StartPrefork({});
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  std::set<int64_t> old = ChildrenOf(server->pid());
  ASSERT_EQ(old.size(), 2u);

  // Bounded load: raw calls on fresh connections (two threads), and calls
  // on one Channel, until told to stop or 100,000 calls each.
  std::atomic<bool> stop{false};
  Counts raw;
  Counts channel_counts;
  std::vector<std::thread> load;
  // Stops and joins the load however the test ends: an ASSERT that returns
  // early must not destroy joinable threads (std::terminate, "terminate
  // called without an active exception", instead of the failure message).
  struct JoinLoad {
    std::atomic<bool>* stop;
    std::vector<std::thread>* load;
    ~JoinLoad() {
      *stop = true;
      for (std::thread& t : *load) {
        if (t.joinable()) t.join();
      }
    }
  } join_load{&stop, &load};
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&] {
      for (int i = 0; i < 100000 && !stop; ++i) {
        ServerInfoResponse info;
        raw.Add(RawGet(port, &info));
      }
    });
  }
  load.emplace_back([&] {
    auto channel = Channel::Create(absl::StrCat("127.0.0.1:", port));
    ASSERT_TRUE(channel.ok()) << channel.status();
    echo::Echo::Stub stub(channel->get());
    CallOptions options;
    options.timeout = absl::Seconds(5);
    echo::EchoRequest req;
    req.set_message("hi");
    for (int i = 0; i < 100000 && !stop; ++i) {
      absl::StatusOr<echo::EchoResponse> r = stub.Echo(req, options);
      if (r.ok()) {
        channel_counts.Add(Outcome::kOk);
        continue;
      }
      // None may fail: a call the draining worker refused unprocessed
      // (GOAWAY) goes again on a new connection to the port, and Echo
      // (NO_SIDE_EFFECTS) is retried after a reset.
      bool goaway = absl::IsUnavailable(r.status()) &&
                    absl::StrContains(r.status().message(), "GOAWAY before");
      channel_counts.Add(goaway ? Outcome::kGoaway : Outcome::kOther);
      if (!goaway) std::cerr << "channel call failed: " << r.status() << "\n";
    }
  });
  ASSERT_TRUE(WaitFor([&] { return raw.ok > 200 && channel_counts.ok > 200; }));

  ASSERT_EQ(kill(server->pid(), SIGHUP), 0);
  std::set<int64_t> now;
  bool replaced = WaitFor([&] {
    now = ChildrenOf(server->pid());
    for (int64_t pid : now) {
      if (old.count(pid) != 0) return false;
    }
    return now.size() == 2;
  });
  // Keep the load on a little after the roll, then stop it.
  int target = raw.ok + 200;
  WaitFor([&] { return raw.ok > target; });
  stop = true;
  for (std::thread& t : load) t.join();  // Before reading the counts.
  std::cerr << "SIGHUP under load, tcp_migrate_req=" << MigrateReq()
            << ": raw fresh connections: " << raw.ToString()
            << "; channel calls: " << channel_counts.ToString() << "\n";
  ASSERT_TRUE(replaced) << "workers not all replaced";
  EXPECT_EQ(SamplePids(port, 40, server->pid()), now);
  // A channel's calls all succeed through the roll.
  EXPECT_EQ(channel_counts.failed(), 0) << channel_counts.ToString();
  // The port always had a listener: no connect was refused.
  EXPECT_EQ(raw.refused, 0);
  if (MigrateReq() == 1) {
    // Queued connections move to another worker instead of being reset.
    // (A connection the old worker accepted just before it stopped
    // listening may still get GOAWAY before its first call: refused
    // unprocessed, counted as goaway, which a client may resend.)
    EXPECT_EQ(raw.reset, 0) << raw.ToString();
    EXPECT_EQ(raw.other, 0) << raw.ToString();
  }
  EXPECT_TRUE(server->Stop().ok());
}

TEST(PreforkTest, SigtermDrainsBothWorkersAndLeavesNone) {
  auto server = StartPrefork({"--grace_ms=10000"});
  ASSERT_NE(server, nullptr);
  std::set<int64_t> workers = ChildrenOf(server->pid());
  ASSERT_EQ(workers.size(), 2u);
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server->port()));
  ASSERT_TRUE(channel.ok()) << channel.status();
  echo::Echo::Stub stub(channel->get());
  echo::ExpandRequest req;
  req.set_count(3);
  req.set_size(4);
  req.set_interval_ms(700);
  auto stream = stub.Expand(req);
  echo::EchoResponse msg;
  ASSERT_TRUE(stream->Read(&msg));  // The call is running in a worker.
  absl::Time term = absl::Now();
  ASSERT_EQ(kill(server->pid(), SIGTERM), 0);
  int read = 1;
  while (stream->Read(&msg)) ++read;
  EXPECT_TRUE(stream->Finish().ok()) << stream->Finish();
  EXPECT_EQ(read, 3);  // All of it, over ~1.4 s of drain.
  EXPECT_GE(absl::Now() - term, absl::Milliseconds(1000));
  EXPECT_TRUE(server->Stop().ok());  // Exit status 0.
  for (int64_t pid : workers) EXPECT_TRUE(Gone(pid)) << pid;
}

}  // namespace
}  // namespace bevrpc
