#include "services/builtin/prefork.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace bevrpc::builtin {
namespace {

TEST(ParseWorkersTest, AcceptsOneToMax) {
  EXPECT_EQ(*ParseWorkers("1"), 1);
  EXPECT_EQ(*ParseWorkers("4"), 4);
  EXPECT_EQ(*ParseWorkers(absl::StrCat(kMaxWorkers)), kMaxWorkers);
}

TEST(ParseWorkersTest, RejectsOthersNamingTheFlag) {
  for (const char* bad : {"0", "-1", "abc", "", "2.5", "1025"}) {
    absl::StatusOr<int> n = ParseWorkers(bad);
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(n.status().message().find(absl::StrCat("--workers=", bad, ":")),
              absl::string_view::npos)
        << n.status();
  }
}

TEST(RestartBackoffTest, DoublesUpToTheCap) {
  PreforkOptions o;
  o.initial_backoff = absl::Milliseconds(100);
  o.max_backoff = absl::Seconds(1);
  EXPECT_EQ(RestartBackoff(o, 0), absl::Milliseconds(100));
  EXPECT_EQ(RestartBackoff(o, 1), absl::Milliseconds(100));
  EXPECT_EQ(RestartBackoff(o, 2), absl::Milliseconds(200));
  EXPECT_EQ(RestartBackoff(o, 4), absl::Milliseconds(800));
  EXPECT_EQ(RestartBackoff(o, 5), absl::Seconds(1));
  EXPECT_EQ(RestartBackoff(o, 1000), absl::Seconds(1));
}

TEST(JoinHostPortTest, BracketsIpv6) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 80), "127.0.0.1:80");
  EXPECT_EQ(JoinHostPort("::1", 80), "[::1]:80");
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

int Bind(int port, bool reuse_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(ReservePortTest, ReservesWithoutListening) {
  absl::StatusOr<ReservedPort> r = ReservePort("127.0.0.1", 0);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GT(r->port, 0);
  // Reserved but not listening: a connect is refused.
  EXPECT_EQ(Connect(r->port), -ECONNREFUSED);
  // A socket without SO_REUSEPORT cannot take the port.
  EXPECT_EQ(Bind(r->port, /*reuse_port=*/false), -1);
  // A worker's SO_REUSEPORT listener can, and gets the connections.
  int listener = Bind(r->port, /*reuse_port=*/true);
  ASSERT_GE(listener, 0);
  ASSERT_EQ(listen(listener, 16), 0);
  int client = Connect(r->port);
  ASSERT_GE(client, 0);
  int accepted = accept(listener, nullptr, nullptr);
  EXPECT_GE(accepted, 0);
  close(accepted);
  close(client);
  close(listener);
  close(r->fd);
}

TEST(ReservePortTest, RejectsANameAndATakenPort) {
  absl::StatusOr<ReservedPort> r = ReservePort("localhost", 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  int plain = Bind(0, /*reuse_port=*/false);
  ASSERT_GE(plain, 0);
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(plain, reinterpret_cast<sockaddr*>(&a), &len);
  r = ReservePort("127.0.0.1", ntohs(a.sin_port));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  close(plain);
}

// Reads one line from `fd` (non-blocking), waiting until `deadline`.
std::optional<std::string> ReadLine(int fd, std::string* buffer,
                                    absl::Time deadline) {
  while (true) {
    size_t nl = buffer->find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer->substr(0, nl);
      buffer->erase(0, nl + 1);
      return line;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <=
        0) {
      continue;
    }
    char chunk[512];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n == 0) return std::nullopt;
    if (n > 0) buffer->append(chunk, static_cast<size_t>(n));
  }
}

// A master (RunPrefork) in a child process of the test, whose workers
// report "start INDEX PID" and "stop INDEX PID" lines on a shared pipe.
class MasterProcess {
 public:
  explicit MasterProcess(PreforkOptions options,
                         std::function<int(const WorkerContext&)> body) {
    int out[2], events[2];
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(events, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      events_write_ = events[1];
      absl::StatusOr<ReservedPort> port = ReservePort("127.0.0.1", 0);
      if (!port.ok()) _exit(100);
      _exit(RunPrefork(options, *port, [&](const WorkerContext& w) {
        Event("start", w.index);
        return body(w);
      }));
    }
    close(out[1]);
    close(events[1]);
    out_ = out[0];
    events_ = events[0];
    fcntl(out_, F_SETFL, O_NONBLOCK);
    fcntl(events_, F_SETFL, O_NONBLOCK);
  }
  ~MasterProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
    close(events_);
  }

  pid_t pid() const { return pid_; }

  // In a worker: writes "WHAT INDEX PID" to the events pipe (atomic).
  static void Event(const char* what, int index) {
    std::string line = absl::StrCat(what, " ", index, " ", getpid(), "\n");
    ssize_t ignored = write(events_write_, line.data(), line.size());
    (void)ignored;
  }

  // The next worker event, as {what, index, pid}; "" on timeout.
  std::vector<std::string> NextEvent(absl::Duration timeout = absl::Seconds(20)) {
    std::optional<std::string> line =
        ReadLine(events_, &events_buf_, absl::Now() + timeout);
    if (!line) return {""};
    return absl::StrSplit(*line, ' ');
  }
  std::optional<std::string> NextOutputLine() {
    return ReadLine(out_, &out_buf_, absl::Now() + absl::Seconds(20));
  }

  // Waits (bounded) for the master to exit; its exit status, or -1.
  int Wait(absl::Duration timeout = absl::Seconds(30)) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return -1;
  }

 private:
  static inline int events_write_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  int out_ = -1;
  int events_ = -1;
  std::string out_buf_, events_buf_;
};

PreforkOptions FastOptions(int workers) {
  PreforkOptions o;
  o.workers = workers;
  o.name = "prefork_test";
  o.listen_host = "127.0.0.1";
  o.initial_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(10);
  o.stop_timeout = absl::Seconds(10);
  return o;
}

// A worker that is ready at once and waits for SIGTERM (blocked for it).
int ServeUntilTerm(const WorkerContext& w) {
  ReportReady(w);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  int sig = 0;
  sigwait(&stop, &sig);
  MasterProcess::Event("stop", w.index);
  return 0;
}

bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

TEST(RunPreforkTest, SupervisesRestartsRollsAndStops) {
  MasterProcess master(FastOptions(2), ServeUntilTerm);
  std::vector<std::string> pids(2);
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> e = master.NextEvent();
    ASSERT_EQ(e.size(), 3u) << e[0];
    ASSERT_EQ(e[0], "start");
    pids[std::stoi(e[1])] = e[2];
  }
  std::optional<std::string> line = master.NextOutputLine();
  ASSERT_TRUE(line.has_value());
  EXPECT_TRUE(absl::StartsWith(*line, "listening on 127.0.0.1:")) << *line;

  // SIGHUP: one at a time, each replacement ready before the old stops
  // (so once the last old one stopped, the master saw every worker ready).
  kill(master.pid(), SIGHUP);
  std::vector<std::string> e;
  for (int i = 0; i < 2; ++i) {
    std::string index = absl::StrCat(i);
    e = master.NextEvent();
    ASSERT_EQ(e, (std::vector<std::string>{"start", index, e.back()}));
    std::string fresh = e[2];
    e = master.NextEvent();
    ASSERT_EQ(e, (std::vector<std::string>{"stop", index, pids[i]}));
    pids[i] = fresh;
  }

  // kill -9 of worker 0: replaced, with the same index.
  kill(std::stoi(pids[0]), SIGKILL);
  e = master.NextEvent();
  ASSERT_EQ(e, (std::vector<std::string>{"start", "0", e.back()}));
  EXPECT_NE(e[2], pids[0]);
  pids[0] = e[2];

  // SIGTERM: both drain, the master exits 0 and leaves no worker.
  kill(master.pid(), SIGTERM);
  std::vector<std::string> stopped;
  for (int i = 0; i < 2; ++i) stopped.push_back(master.NextEvent().back());
  std::sort(stopped.begin(), stopped.end());
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(stopped, pids);
  EXPECT_EQ(master.Wait(), 0);
  for (const std::string& pid : pids) EXPECT_TRUE(Gone(std::stoi(pid)));
}

TEST(RunPreforkTest, WorkersDrainWhenTheMasterIsKilled) {
  MasterProcess master(FastOptions(2), ServeUntilTerm);
  std::vector<std::string> pids;
  for (int i = 0; i < 2; ++i) pids.push_back(master.NextEvent().back());
  ASSERT_TRUE(master.NextOutputLine().has_value());
  kill(master.pid(), SIGKILL);
  EXPECT_EQ(master.Wait(), 128 + SIGKILL);
  // PR_SET_PDEATHSIG: each worker got SIGTERM and drained.
  std::vector<std::string> stopped;
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> e = master.NextEvent();
    ASSERT_EQ(e[0], "stop");
    stopped.push_back(e.back());
  }
  std::sort(stopped.begin(), stopped.end());
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(stopped, pids);
}

TEST(RunPreforkTest, GivesUpOnAWorkerThatKeepsFailing) {
  PreforkOptions o = FastOptions(2);
  o.max_fast_failures = 3;
  MasterProcess master(o, [](const WorkerContext& w) {
    if (w.index == 1) return 1;  // Dies before it is ready, every time.
    return ServeUntilTerm(w);
  });
  EXPECT_EQ(master.Wait(), 1);
  EXPECT_FALSE(master.NextOutputLine().has_value());  // Never all ready.
}

TEST(RunPreforkTest, StopsOnAUsageErrorOfAWorker) {
  MasterProcess master(FastOptions(3), [](const WorkerContext& w) {
    if (w.index == 2) return 2;
    return ServeUntilTerm(w);
  });
  EXPECT_EQ(master.Wait(), 2);
}

}  // namespace
}  // namespace bevrpc::builtin
