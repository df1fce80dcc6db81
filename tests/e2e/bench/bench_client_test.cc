// The load generator end to end: RunBench (closed loop, open loop, errors by
// code, timeouts, refused and lost connections, total_calls) against an
// in-process echo Server over loopback TCP, and the echo_client binary of
// the peer comparison, whose JSON line is parsed and checked.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "rpc/server.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/e2e/bench/bench_line.pb.h"
#include "tests/testing/server_process.h"
#include "tools/cli/bench.h"

extern char** environ;

namespace bevrpc {
namespace {

using cli::BenchOptions;
using cli::BenchResult;
using cli::RunBench;
using echo::EchoRequest;
using echo::EchoResponse;

// What a child process printed and how it ended.
struct ProcessOutput {
  int exit_code = -1;  // -1 if killed by a signal (or by the timeout).
  std::string out;
  std::string err;
};

// Runs `binary` with `args`, collecting stdout and stderr, for at most
// `timeout` (then SIGKILL).
absl::StatusOr<ProcessOutput> RunProcess(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         absl::Duration timeout) {
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(),
                       environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return absl::InternalError(absl::StrCat("posix_spawn: ", strerror(rc)));
  }
  ProcessOutput result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  absl::Time deadline = absl::Now() + timeout;
  while (open_fds > 0) {
    int left_ms = static_cast<int>(
        absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left_ms <= 0) break;
    if (poll(fds, 2, left_ms) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  if (open_fds > 0) kill(pid, SIGKILL);  // Timed out.
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// A loopback port with a bound socket that does not listen: connections to
// it are refused. Returns the fd (close it when done).
int RefusingPort(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

void ExpectOrderedPercentiles(const BenchResult& r) {
  const cli::Histogram& h = r.latency;
  EXPECT_GT(h.Percentile(50), 0);
  EXPECT_LE(h.Percentile(50), h.Percentile(90));
  EXPECT_LE(h.Percentile(90), h.Percentile(99));
  EXPECT_LE(h.Percentile(99), h.Percentile(99.9));
  EXPECT_LE(h.Percentile(99.9), static_cast<double>(h.Max()));
  EXPECT_LE(static_cast<double>(h.Min()), h.Percentile(50));
}

class BenchClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(echo::RegisterEchoService(*server_).ok());
    ASSERT_TRUE(server_->Start().ok());
    request_.set_message(std::string(64, 'x'));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  BenchOptions Options() {
    BenchOptions o;
    o.address = absl::StrCat("127.0.0.1:", server_->port());
    o.method = echo::kEchoMethod;
    o.request = &request_;
    o.response_prototype = &response_prototype_;
    o.warmup = absl::Milliseconds(200);
    o.duration = absl::Seconds(1);
    return o;
  }

  std::unique_ptr<Server> server_;
  EchoRequest request_;
  EchoResponse response_prototype_;
};

TEST_F(BenchClientTest, ClosedLoopCountsCallsWithoutErrors) {
  BenchOptions o = Options();
  o.connections = 3;
  o.concurrency = 8;
  o.threads = 2;
  o.check_response = [](const google::protobuf::Message& m) {
    return static_cast<const EchoResponse&>(m).message().size() == 64;
  };
  o.warmup = absl::Milliseconds(500);
  int reports = 0;
  int64_t last_calls = -1;
  bool saw_warmup = false, saw_window = false;
  size_t server_connections = 0;
  o.on_progress = [&](const cli::BenchProgress& p) {
    ++reports;
    server_connections =
        std::max(server_connections, server_->num_connections());
    (p.warming_up ? saw_warmup : saw_window) = true;
    EXPECT_GE(p.calls, last_calls);
    last_calls = p.calls;
    EXPECT_EQ(p.errors, 0);
  };
  absl::StatusOr<BenchResult> r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->calls, 0);
  EXPECT_EQ(r->errors, 0) << cli::FormatSummary(*r);
  EXPECT_TRUE(r->errors_by_code.empty());
  EXPECT_EQ(r->latency.Count(), r->calls);
  EXPECT_DOUBLE_EQ(r->seconds, 1.0);
  EXPECT_NEAR(r->qps, r->calls / r->seconds, 1e-6);
  EXPECT_EQ(r->connections, 3);
  EXPECT_EQ(r->concurrency, 8);
  EXPECT_EQ(r->threads, 2);
  ExpectOrderedPercentiles(*r);
  // ~7 reports in 1.5 s; be generous with slow sanitizer builds.
  EXPECT_GE(reports, 3);
  EXPECT_TRUE(saw_warmup);
  EXPECT_TRUE(saw_window);
  // Each connection is its own TCP connection.
  EXPECT_EQ(server_connections, 3u);
  std::cerr << cli::FormatSummary(*r);
}

TEST_F(BenchClientTest, OpenLoopHoldsTheRate) {
  BenchOptions o = Options();
  o.connections = 2;
  o.rps = 500;
  absl::StatusOr<BenchResult> r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->calls, 300) << cli::FormatSummary(*r);
  EXPECT_LE(r->calls, 700) << cli::FormatSummary(*r);
  EXPECT_EQ(r->errors, 0);
  EXPECT_EQ(r->dropped, 0);
  EXPECT_EQ(r->target_rps, 500);
  ExpectOrderedPercentiles(*r);
}

TEST_F(BenchClientTest, OpenLoopDropsBeyondMaxOutstandingAndTimesFromSchedule) {
  // Each reply takes 100 ms, so 5 outstanding complete ~50 calls/s of the
  // 200 scheduled; the rest are dropped.
  request_.set_delay_ms(100);
  BenchOptions o = Options();
  o.rps = 200;
  o.max_outstanding = 5;
  absl::StatusOr<BenchResult> r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->dropped, 50) << cli::FormatSummary(*r);
  EXPECT_GT(r->calls, 10) << cli::FormatSummary(*r);
  EXPECT_LT(r->calls, 100) << cli::FormatSummary(*r);
  EXPECT_EQ(r->errors, 0);
  // From the schedule, so at least the server's delay (whose loop timer
  // may fire a little early).
  EXPECT_GE(r->latency.Min(), 90'000'000);
}

TEST_F(BenchClientTest, FailedCallsCountByCode) {
  request_.set_fail_code(static_cast<int>(absl::StatusCode::kNotFound));
  request_.set_fail_message("no such thing");
  BenchOptions o = Options();
  o.concurrency = 4;
  o.duration = absl::Milliseconds(500);
  absl::StatusOr<BenchResult> r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 0);
  EXPECT_GT(r->errors, 0);
  ASSERT_EQ(r->errors_by_code.size(), 1u) << cli::FormatSummary(*r);
  EXPECT_EQ(r->errors_by_code.at(absl::StatusCode::kNotFound), r->errors);
  EXPECT_TRUE(absl::StrContains(cli::FormatSummary(*r), "NOT_FOUND"));
}

TEST_F(BenchClientTest, RejectedRepliesAreErrors) {
  BenchOptions o = Options();
  o.concurrency = 2;
  o.duration = absl::Milliseconds(300);
  o.check_response = [](const google::protobuf::Message&) { return false; };
  absl::StatusOr<BenchResult> r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 0);
  EXPECT_GT(r->bad_responses, 0);
  EXPECT_EQ(r->errors, r->bad_responses);
}

TEST_F(BenchClientTest, TotalCallsClosesTheWindowEarly) {
  BenchOptions o = Options();
  o.concurrency = 4;
  o.total_calls = 300;
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Seconds(30);
  absl::Time start = absl::Now();
  absl::StatusOr<BenchResult> r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 300);
  EXPECT_EQ(r->errors, 0);
  EXPECT_LT(r->seconds, 20);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_NEAR(r->qps, 300 / r->seconds, 1e-6);
}

TEST_F(BenchClientTest, DeadlinesCountAsDeadlineExceeded) {
  request_.set_delay_ms(200);
  BenchOptions o = Options();
  o.concurrency = 4;
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Milliseconds(500);
  o.timeout = absl::Milliseconds(20);
  absl::StatusOr<BenchResult> r = RunBench(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 0);
  EXPECT_GT(r->errors_by_code[absl::StatusCode::kDeadlineExceeded], 0)
      << cli::FormatSummary(*r);
}

TEST_F(BenchClientTest, RefusedConnectionsCountAsUnavailableWithoutSpinning) {
  int port = 0;
  int fd = RefusingPort(&port);
  ASSERT_GE(fd, 0);
  BenchOptions o = Options();
  o.address = absl::StrCat("127.0.0.1:", port);
  o.connections = 2;
  o.concurrency = 4;
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Milliseconds(500);
  absl::StatusOr<BenchResult> r = RunBench(o);
  close(fd);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->calls, 0);
  EXPECT_GT(r->errors_by_code[absl::StatusCode::kUnavailable], 0);
  // Parked 10 ms between attempts: ~4 slots x 50 retries, not thousands.
  EXPECT_LT(r->errors, 1000) << cli::FormatSummary(*r);
}

TEST_F(BenchClientTest, LostConnectionsCountAsErrors) {
  BenchOptions o = Options();
  o.connections = 2;
  o.concurrency = 8;
  o.warmup = absl::ZeroDuration();
  o.duration = absl::Milliseconds(1500);
  absl::StatusOr<BenchResult> r;
  std::thread bench([&] { r = RunBench(o); });
  absl::SleepFor(absl::Milliseconds(500));
  server_->Shutdown(absl::ZeroDuration());
  bench.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->calls, 0);
  EXPECT_GT(r->errors, 0) << cli::FormatSummary(*r);
  EXPECT_GT(r->errors_by_code[absl::StatusCode::kUnavailable], 0)
      << cli::FormatSummary(*r);
}

TEST_F(BenchClientTest, EchoClientBinaryPrintsTheContractJsonLine) {
  absl::StatusOr<std::string> binary =
      testing::RunfilePath("tools/bench/echo_client");
  ASSERT_TRUE(binary.ok()) << binary.status();
  // Space-separated values as compare.sh passes them, and one --flag=value.
  absl::StatusOr<ProcessOutput> run = RunProcess(
      *binary,
      {"--host", "127.0.0.1", "--port", absl::StrCat(server_->port()),
       "--connections", "2", "--concurrency", "8", "--payload", "100",
       "--duration", "1", "--warmup=0.2", "--threads", "1"},
      absl::Seconds(60));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->err;
  std::string json;
  for (absl::string_view line : absl::StrSplit(run->out, '\n')) {
    if (absl::StartsWith(line, "{")) json = std::string(line);
  }
  ASSERT_FALSE(json.empty()) << "stdout: " << run->out << "\nstderr: "
                             << run->err;
  // Strict: an unknown (e.g. misspelt) key fails the parse too.
  tests::BenchLine line;
  auto status = google::protobuf::util::JsonStringToMessage(json, &line);
  ASSERT_TRUE(status.ok()) << status << ": " << json;
  EXPECT_TRUE(line.has_system() && line.has_connections() &&
              line.has_concurrency() && line.has_payload() && line.has_qps() &&
              line.has_p50_us() && line.has_p90_us() && line.has_p99_us() &&
              line.has_p999_us() && line.has_errors())
      << "a required key is missing: " << json;
  EXPECT_TRUE(line.has_calls() && line.has_threads() && line.has_duration_s())
      << json;
  EXPECT_EQ(line.system(), "bevrpc");
  EXPECT_EQ(line.connections(), 2);
  EXPECT_EQ(line.concurrency(), 8);
  EXPECT_EQ(line.payload(), 100);
  EXPECT_EQ(line.threads(), 1);
  EXPECT_EQ(line.errors(), 0) << json << "\n" << run->err;
  EXPECT_GT(line.qps(), 0);
  EXPECT_GT(line.calls(), 0);
  EXPECT_NEAR(line.qps(), line.calls() / line.duration_s(), 0.1);
  EXPECT_EQ(line.duration_s(), 1);
  EXPECT_GT(line.p50_us(), 0);
  EXPECT_LE(line.p50_us(), line.p90_us());
  EXPECT_LE(line.p90_us(), line.p99_us());
  EXPECT_LE(line.p99_us(), line.p999_us());
  // Exactly one JSON line; the human summary goes to stderr.
  EXPECT_EQ(std::count(run->out.begin(), run->out.end(), '{'), 1) << run->out;
  EXPECT_TRUE(absl::StrContains(run->err, "p99.9")) << run->err;
}

TEST(EchoClientFlagsTest, BadFlagsExitTwoWithAMessage) {
  absl::StatusOr<std::string> binary =
      testing::RunfilePath("tools/bench/echo_client");
  ASSERT_TRUE(binary.ok()) << binary.status();
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{}, "--port is required"},
      {{"--port", "abc"}, "--port: expected an integer"},
      {{"--port", "70000"}, "--port: expected an integer"},
      {{"--port", "1", "--bogus", "2"}, "unknown flag --bogus"},
      {{"--port=1", "--bogus"}, "unknown flag --bogus"},
      {{"--port"}, "--port: missing value"},
      {{"--port=1", "--duration=0"}, "--duration: expected seconds"},
      {{"--port=1", "--connections", "0"}, "--connections"},
      {{"--port=1", "--warmup", "-1"}, "--warmup"},
      {{"--port=1", "stray"}, "unexpected argument 'stray'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ProcessOutput> run =
        RunProcess(*binary, c.args, absl::Seconds(30));
    ASSERT_TRUE(run.ok()) << run.status();
    std::string argv = absl::StrJoin(c.args, " ");
    EXPECT_EQ(run->exit_code, 2) << argv;
    EXPECT_TRUE(absl::StrContains(run->err, c.message))
        << argv << ": " << run->err;
    EXPECT_TRUE(run->out.empty()) << argv << ": " << run->out;
  }
}

}  // namespace
}  // namespace bevrpc
