// End-to-end tests of the bevrpc command-line client: the real //tools:bevrpc
// binary, run as a subprocess, against real cli_test_server processes on
// 127.0.0.1.
//
// Each case checks what a shell user sees: the exact stdout, the exit code
// (docs/cli.md: 0 OK, 1 health NOT_SERVING, 2 usage, 3 bad input, 64 + code
// for a failed call), and that an error is reported on stderr as one line
// naming what failed. Usage errors are the exception: their first line names
// the problem and the command's help follows, by design (UsageError in
// tools/bevrpc_cli/cli.cc).
//
// Three servers are shared by the whole suite: one with reflection, one
// without, and one whose health service reports NOT_SERVING. Every wait is
// bounded: a CLI run is killed after kRunTimeout.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "services/echo/echo.pb.h"
#include "tests/testing/server_process.h"

extern char** environ;

namespace bevrpc {
namespace {

using ::bevrpc::testing::RunfilePath;
using ::bevrpc::testing::ServerProcess;

constexpr char kCliBinary[] = "tools/bevrpc";
constexpr char kServerBinary[] = "tests/e2e/cli/cli_test_server";
constexpr char kInteropServerBinary[] = "tests/e2e/cli/interop_test_server";
constexpr char kEcho[] = "bevrpc.echo.Echo/Echo";
constexpr char kEchoProto[] = "services/echo/echo.proto";
// A CLI run that takes longer than this is killed and the test fails.
constexpr absl::Duration kRunTimeout = absl::Seconds(15);

// --- Running the CLI --------------------------------------------------------

// What one run of a binary produced.
struct RunResult {
  int exit_code = -1;  // -N if killed by signal N.
  std::string out;
  std::string err;
  absl::Duration elapsed;
  bool timed_out = false;
  std::string spawn_error;  // Non-empty if the binary could not be started.
};

// `text`, cut to `limit` bytes so a sanitizer report does not flood the log.
std::string Clip(const std::string& text, size_t limit = 1200) {
  if (text.size() <= limit) return text;
  return absl::StrCat(text.substr(0, limit), "... (", text.size() - limit,
                      " more bytes)");
}

std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  os << "\n  exit code: " << r.exit_code << (r.timed_out ? " (timed out)" : "")
     << "\n  elapsed: " << absl::FormatDuration(r.elapsed);
  if (!r.spawn_error.empty()) os << "\n  spawn error: " << r.spawn_error;
  return os << "\n  stdout: \"" << Clip(r.out) << "\"\n  stderr: \""
            << Clip(r.err) << "\"\n";
}

void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Reads what is available on `*fd` into `sink`; closes it and sets -1 at EOF.
void Drain(int* fd, std::string* sink) {
  char buf[4096];
  ssize_t n;
  while ((n = read(*fd, buf, sizeof(buf))) > 0) sink->append(buf, n);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    close(*fd);
    *fd = -1;
  }
}

// Waits for `pid` until `deadline`; SIGKILLs it after that. Returns the wait
// status and sets `*killed` if it had to kill.
int Reap(pid_t pid, absl::Time deadline, bool* killed) {
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() >= deadline) {
      *killed = true;
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  return status;
}

// Pumps `input` into the child's stdin and its stdout/stderr into `r` until
// both outputs close or `deadline` passes.
void Pump(int in_fd, int out_fd, int err_fd, absl::string_view input,
          absl::Time deadline, RunResult* r) {
  size_t written = 0;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  while (out_fd >= 0 || err_fd >= 0) {
    int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) break;
    pollfd fds[3] = {
        {out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
    if (poll(fds, 3, static_cast<int>(ms)) < 0 && errno != EINTR) break;
    if (out_fd >= 0 && fds[0].revents) Drain(&out_fd, &r->out);
    if (err_fd >= 0 && fds[1].revents) Drain(&err_fd, &r->err);
    if (in_fd >= 0 && fds[2].revents) {
      ssize_t n = write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += n;
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
}

// Runs `binary args...` with `input` on stdin; kills it after `timeout`.
RunResult RunProcess(const std::string& binary,
                     const std::vector<std::string>& args,
                     absl::string_view input = "",
                     absl::Duration timeout = kRunTimeout) {
  RunResult r;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
      pipe2(err, O_CLOEXEC) != 0) {
    r.spawn_error = absl::StrCat("pipe2: ", strerror(errno));
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  // The test ignores SIGPIPE; the CLI must see the default dispositions.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  const absl::Time start = absl::Now();
  pid_t pid = 0;
  int rc =
      posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  for (int fd : {in[0], out[1], err[1]}) close(fd);
  if (rc != 0) {
    for (int fd : {in[1], out[0], err[0]}) close(fd);
    r.spawn_error = absl::StrCat("posix_spawn ", binary, ": ", strerror(rc));
    return r;
  }
  for (int fd : {in[1], out[0], err[0]}) SetNonBlocking(fd);
  const absl::Time deadline = start + timeout;
  Pump(in[1], out[0], err[0], input, deadline, &r);
  int status = Reap(pid, deadline, &r.timed_out);
  r.elapsed = absl::Now() - start;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return r;
}

// Runs the bevrpc CLI.
RunResult Cli(const std::vector<std::string>& args,
              absl::string_view input = "") {
  absl::StatusOr<std::string> binary = RunfilePath(kCliBinary);
  if (!binary.ok()) {
    RunResult r;
    r.spawn_error = std::string(binary.status().message());
    return r;
  }
  RunResult r = RunProcess(*binary, args, input);
  // A crash or sanitizer report is shown once in full; the expectations
  // that then fail print it clipped.
  if (r.exit_code < 0 || absl::StrContains(r.err, "Sanitizer")) {
    ADD_FAILURE() << "bevrpc " << absl::StrJoin(args, " ")
                  << " crashed or reported a sanitizer error:\n"
                  << Clip(r.err, 8000);
  }
  return r;
}

// True if `err` is exactly one newline-terminated line.
::testing::AssertionResult IsOneLine(const std::string& err) {
  if (err.empty() || err.back() != '\n' || err.find('\n') != err.size() - 1) {
    return ::testing::AssertionFailure()
           << "stderr is not exactly one line: \"" << Clip(err) << "\"";
  }
  return ::testing::AssertionSuccess();
}

std::string FirstLine(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

std::string RunfilesRoot() {
  const char* dir = getenv("TEST_SRCDIR");
  return absl::StrCat(dir != nullptr ? dir : ".", "/bevrpc");
}

std::string TempFile(absl::string_view name, absl::string_view contents) {
  const char* dir = getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// --- Fixture ----------------------------------------------------------------

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);  // A CLI that exits early must not kill us.
    server_ = StartServer({});
    no_reflection_ = StartServer({"--reflection=false"});
    not_serving_ =
        StartServer({"--not_serving=bevrpc.echo.Echo",
                     "--not_serving=test.A,test.B", "--server_not_serving"});
    interop_ = StartServer({}, kInteropServerBinary);
    closed_port_ = ReserveClosedPort(&closed_fd_);
  }

  static void TearDownTestSuite() {
    for (ServerProcess** s :
         {&server_, &no_reflection_, &not_serving_, &interop_}) {
      if (*s == nullptr) continue;
      absl::Status stopped = (*s)->Stop();
      if (!stopped.ok()) ADD_FAILURE() << "server: " << stopped;
      delete *s;
      *s = nullptr;
    }
    if (closed_fd_ >= 0) close(closed_fd_);
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(no_reflection_, nullptr);
    ASSERT_NE(not_serving_, nullptr);
    ASSERT_NE(interop_, nullptr);
    ASSERT_GT(closed_port_, 0);
  }

  static ServerProcess* StartServer(std::vector<std::string> args,
                                    const char* binary = kServerBinary) {
    args.insert(args.begin(), "--port=0");
    auto s = ServerProcess::Start(binary, args);
    if (!s.ok()) {
      ADD_FAILURE() << "cannot start " << binary << ": " << s.status();
      return nullptr;
    }
    return s->release();
  }

  // A loopback port that refuses connections: bound, never listened on, and
  // held for the suite so nothing else takes it.
  static int ReserveClosedPort(int* fd) {
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (*fd < 0 || bind(*fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return -1;
    }
    return ntohs(addr.sin_port);
  }

  static std::string Addr(ServerProcess* s) {
    return absl::StrCat("127.0.0.1:", s->port());
  }
  static std::string ClosedAddr() {
    return absl::StrCat("127.0.0.1:", closed_port_);
  }

  static ServerProcess* server_;
  static ServerProcess* no_reflection_;
  static ServerProcess* not_serving_;
  // gRPC's interop TestService, from a .proto with only services.
  static ServerProcess* interop_;
  static int closed_port_;
  static int closed_fd_;
};

ServerProcess* CliTest::server_ = nullptr;
ServerProcess* CliTest::no_reflection_ = nullptr;
ServerProcess* CliTest::not_serving_ = nullptr;
ServerProcess* CliTest::interop_ = nullptr;
int CliTest::closed_port_ = -1;
int CliTest::closed_fd_ = -1;

// --- list -------------------------------------------------------------------

TEST_F(CliTest, ListPrintsServicesSorted) {
  RunResult r = Cli({"list", Addr(server_)});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "bevrpc.echo.Echo\n"
            "bevrpc.health.v1.Health\n"
            "bevrpc.reflection.v1.ServerReflection\n")
      << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, ListServicePrintsMethodsWithTypes) {
  RunResult r = Cli({"list", Addr(server_), "bevrpc.echo.Echo"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "bevrpc.echo.Echo/Echo(bevrpc.echo.EchoRequest) returns "
            "(bevrpc.echo.EchoResponse)\n"
            "bevrpc.echo.Echo/Expand(bevrpc.echo.ExpandRequest) returns "
            "(stream bevrpc.echo.EchoResponse)\n"
            "bevrpc.echo.Echo/Collect(stream bevrpc.echo.EchoRequest) returns "
            "(bevrpc.echo.EchoResponse)\n"
            "bevrpc.echo.Echo/Chat(stream bevrpc.echo.EchoRequest) returns "
            "(stream bevrpc.echo.EchoResponse)\n")
      << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, ListUnknownServiceNamesTheAvailableOnes) {
  RunResult r = Cli({"list", Addr(server_), "bevrpc.echo.Ekko"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_EQ(r.err,
            "bevrpc: unknown service \"bevrpc.echo.Ekko\"; the server has: "
            "bevrpc.echo.Echo, bevrpc.health.v1.Health, "
            "bevrpc.reflection.v1.ServerReflection\n")
      << r;
}

// --- describe ---------------------------------------------------------------

TEST_F(CliTest, DescribeMessage) {
  RunResult r = Cli({"describe", Addr(server_), "bevrpc.echo.EchoRequest"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(absl::StartsWith(r.out, "message EchoRequest {\n")) << r;
  EXPECT_TRUE(absl::StrContains(r.out, "  string message = 1;\n")) << r;
  EXPECT_TRUE(absl::StrContains(r.out, "  uint32 delay_ms = 2;\n")) << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, DescribeService) {
  RunResult r = Cli({"describe", Addr(server_), "bevrpc.echo.Echo"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "service Echo {\n"
            "  rpc Echo(.bevrpc.echo.EchoRequest) returns "
            "(.bevrpc.echo.EchoResponse) {\n"
            "    option idempotency_level = NO_SIDE_EFFECTS;\n"
            "  }\n"
            "  rpc Expand(.bevrpc.echo.ExpandRequest) returns "
            "(stream .bevrpc.echo.EchoResponse) {\n"
            "    option idempotency_level = NO_SIDE_EFFECTS;\n"
            "  }\n"
            "  rpc Collect(stream .bevrpc.echo.EchoRequest) returns "
            "(.bevrpc.echo.EchoResponse) {\n"
            "    option idempotency_level = NO_SIDE_EFFECTS;\n"
            "  }\n"
            "  rpc Chat(stream .bevrpc.echo.EchoRequest) returns "
            "(stream .bevrpc.echo.EchoResponse) {\n"
            "    option idempotency_level = NO_SIDE_EFFECTS;\n"
            "  }\n"
            "}\n")
      << r;
  EXPECT_EQ(r.err, "") << r;
}

// The method's options, idempotency_level included, come through the
// server's reflection.
TEST_F(CliTest, DescribeMethodShowsItsIdempotencyLevel) {
  RunResult r = Cli({"describe", Addr(server_), "bevrpc.echo.Echo/Echo"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "// in service bevrpc.echo.Echo\n"
            "rpc Echo(.bevrpc.echo.EchoRequest) returns "
            "(.bevrpc.echo.EchoResponse) {\n"
            "  option idempotency_level = NO_SIDE_EFFECTS;\n"
            "}\n")
      << r;
  EXPECT_EQ(r.err, "") << r;
}

// A method without the option prints as one line (interop's
// grpc.testing.TestService marks none).
TEST_F(CliTest, DescribeMethodWithoutIdempotencyLevel) {
  RunResult r =
      Cli({"describe", Addr(interop_), "grpc.testing.TestService/EmptyCall"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "// in service grpc.testing.TestService\n"
            "rpc EmptyCall(.grpc.testing.Empty) returns "
            "(.grpc.testing.Empty);\n")
      << r;
  EXPECT_EQ(r.err, "") << r;
}

// The same from --proto files, with reflection off.
TEST_F(CliTest, DescribeMethodFromProtoShowsItsIdempotencyLevel) {
  RunResult r = Cli({"describe", Addr(no_reflection_), "bevrpc.echo.Echo/Echo",
                     "--proto", kEchoProto, "-I", RunfilesRoot()});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "// in service bevrpc.echo.Echo\n"
            "rpc Echo(.bevrpc.echo.EchoRequest) returns "
            "(.bevrpc.echo.EchoResponse) {\n"
            "  option idempotency_level = NO_SIDE_EFFECTS;\n"
            "}\n")
      << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, DescribeUnknownSymbolIsBadInput) {
  RunResult r = Cli({"describe", Addr(server_), "bevrpc.echo.NoSuchMessage"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StartsWith(r.err, "bevrpc: ")) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "\"bevrpc.echo.NoSuchMessage\"")) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "not known")) << r;
}

// --- call: requests and output formats ---------------------------------------

TEST_F(CliTest, CallWithJsonArgument) {
  RunResult r = Cli({"call", Addr(server_), kEcho, R"({"message":"hi"})"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"hi\"}\n") << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, CallWithDataFromFile) {
  std::string path = TempFile("request.json", "{\"message\": \"from file\"}\n");
  RunResult r =
      Cli({"call", Addr(server_), kEcho, "-d", absl::StrCat("@", path)});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"from file\"}\n") << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, CallWithDataFromMissingFileNamesIt) {
  RunResult r =
      Cli({"call", Addr(server_), kEcho, "--data=@/nonexistent/req.json"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "/nonexistent/req.json")) << r;
}

TEST_F(CliTest, CallWithDataFromStdin) {
  RunResult r = Cli({"call", Addr(server_), kEcho, "-d", "@-"},
                    "{\"message\":\"from stdin\"}\n");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"from stdin\"}\n") << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, CallServerStreamPrintsEachMessage) {
  RunResult r = Cli({"call", Addr(server_), "bevrpc.echo.Echo/Expand",
                     R"({"count":3,"size":4})", "-v"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out,
            "{\"message\":\"xxxx\"}\n{\"message\":\"xxxx\"}\n"
            "{\"message\":\"xxxx\"}\n")
      << r;
}

TEST_F(CliTest, CallBidiStreamFromStdinNdjson) {
  RunResult r = Cli({"call", Addr(server_), "bevrpc.echo.Echo/Chat"},
                    "{\"message\":\"a\"}\n\n{\"message\":\"b\"}\n");
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"a\"}\n{\"message\":\"b\"}\n") << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, CallClientStreamFromArgument) {
  RunResult r = Cli({"call", Addr(server_), "bevrpc.echo.Echo/Collect",
                     "{\"message\":\"x\"}\n{\"message\":\"y\"}"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"xy\"}\n") << r;
}

// The answer to line 1 is printed although line 2 is bad: the bidi call is
// half-closed at the bad line, not cancelled.
TEST_F(CliTest, CallBidiBadLinePrintsEarlierAnswersThenFails) {
  RunResult r = Cli({"call", Addr(server_), "bevrpc.echo.Echo/Chat"},
                    "{\"message\":\"a\"}\n{\"mesage\":\"b\"}\n"
                    "{\"message\":\"c\"}\n");
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "{\"message\":\"a\"}\n") << r;
  EXPECT_EQ(r.err,
            "bevrpc: request line 2: unknown field \"mesage\" in "
            "bevrpc.echo.EchoRequest, did you mean \"message\"?\n")
      << r;
}

// A client-streaming call is cancelled at a bad line: its one answer would
// cover only part of the input.
TEST_F(CliTest, CallClientStreamBadLineCancels) {
  RunResult r = Cli({"call", Addr(server_), "bevrpc.echo.Echo/Collect"},
                    "{\"message\":\"a\"}\n{\"mesage\":\"b\"}\n");
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(absl::StartsWith(r.err, "bevrpc: request line 2: ")) << r;
}

TEST_F(CliTest, BenchRefusesStreamingMethods) {
  RunResult r = Cli({"bench", Addr(server_), "bevrpc.echo.Echo/Expand", "{}"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "is a streaming method")) << r;
}

TEST_F(CliTest, CallFormatText) {
  RunResult r = Cli({"call", Addr(server_), kEcho, R"({"message":"hi"})",
                     "--format", "text"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "message: \"hi\"\n") << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, CallFormatBinaryIsTheSerializedResponse) {
  RunResult r = Cli(
      {"call", Addr(server_), kEcho, R"({"message":"hi"})", "--format=binary"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.err, "") << r;
  EXPECT_EQ(r.out, std::string("\x0a\x02hi", 4)) << r;
  echo::EchoResponse response;
  ASSERT_TRUE(response.ParseFromString(r.out)) << r;
  EXPECT_EQ(response.message(), "hi");
}

TEST_F(CliTest, CallEmitDefaults) {
  RunResult plain = Cli({"call", Addr(server_), kEcho, "{}"});
  EXPECT_EQ(plain.exit_code, 0) << plain;
  EXPECT_EQ(plain.out, "{}\n") << plain;
  RunResult r = Cli({"call", Addr(server_), kEcho, "{}", "--emit-defaults"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"\"}\n") << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, CallWithMetadataAndVerbose) {
  RunResult r = Cli({"call", Addr(server_), kEcho, R"({"message":"hi"})",
                     "--metadata", "k=v", "--metadata=x-id=7", "-v"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"hi\"}\n") << r;
  // The request headers as sent; the echo service sends no trailers.
  EXPECT_EQ(r.err, "> k: v\n> x-id: 7\n") << r;
}

// --- services-only .proto, binary metadata: gRPC's interop TestService -----

TEST_F(CliTest, ServicesOnlyProtoIsListedDescribedAndCalledThroughReflection) {
  RunResult list = Cli({"list", Addr(interop_)});
  EXPECT_EQ(list.exit_code, 0) << list;
  EXPECT_EQ(list.out,
            "bevrpc.health.v1.Health\n"
            "bevrpc.reflection.v1.ServerReflection\n"
            "bevrpc.server.v1.ServerInfo\n"
            "grpc.testing.TestService\n")
      << list;
  EXPECT_EQ(list.err, "") << list;

  RunResult methods = Cli({"list", Addr(interop_), "grpc.testing.TestService"});
  EXPECT_EQ(methods.exit_code, 0) << methods;
  EXPECT_TRUE(absl::StartsWith(
      methods.out,
      "grpc.testing.TestService/EmptyCall(grpc.testing.Empty) returns "
      "(grpc.testing.Empty)\n"
      "grpc.testing.TestService/UnaryCall(grpc.testing.SimpleRequest) returns "
      "(grpc.testing.SimpleResponse)\n"))
      << methods;
  EXPECT_EQ(std::count(methods.out.begin(), methods.out.end(), '\n'), 8)
      << methods;

  RunResult describe =
      Cli({"describe", Addr(interop_), "grpc.testing.TestService"});
  EXPECT_EQ(describe.exit_code, 0) << describe;
  EXPECT_TRUE(absl::StartsWith(
      describe.out,
      "service TestService {\n"
      "  rpc EmptyCall(.grpc.testing.Empty) returns (.grpc.testing.Empty);\n"))
      << describe;

  RunResult empty =
      Cli({"call", Addr(interop_), "grpc.testing.TestService/EmptyCall"});
  EXPECT_EQ(empty.exit_code, 0) << empty;
  EXPECT_EQ(empty.out, "{}\n") << empty;
  RunResult unary = Cli({"call", Addr(interop_),
                         "grpc.testing.TestService/UnaryCall",
                         R"({"payload":{"body":"aGk="}})"});
  EXPECT_EQ(unary.exit_code, 0) << unary;
  EXPECT_EQ(unary.out, "{\"payload\":{\"body\":\"aGk=\"}}\n") << unary;
  EXPECT_EQ(unary.err, "") << unary;
}

// gRPC's custom_metadata case on a unary call: the response header and the
// trailer both reach the CLI, shown apart from the request headers.
TEST_F(CliTest, UnaryResponseHeadersAreShownWithVerbose) {
  RunResult r = Cli({"call", Addr(interop_),
                     "grpc.testing.TestService/UnaryCall", "{}", "--metadata",
                     "x-grpc-test-echo-initial=test_initial_metadata_value",
                     "--metadata", "x-grpc-test-echo-trailing-bin=\xab", "-v"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"payload\":{}}\n") << r;
  EXPECT_EQ(r.err,
            "> x-grpc-test-echo-initial: test_initial_metadata_value\n"
            "> x-grpc-test-echo-trailing-bin: \\xab\n"
            "< x-grpc-test-echo-initial: test_initial_metadata_value\n"
            "< [trailer] x-grpc-test-echo-trailing-bin: \\xab\n")
      << r;
}

TEST_F(CliTest, BinaryMetadataAndStatusMessagesFailOnlyTheirCall) {
  const std::string unary = "grpc.testing.TestService/UnaryCall";
  // A binary request header, echoed back as a binary trailer.
  RunResult echoed =
      Cli({"call", Addr(interop_), unary, "{}", "--metadata",
           "x-grpc-test-echo-trailing-bin=\xab\xab\xab", "-v"});
  EXPECT_EQ(echoed.exit_code, 0) << echoed;
  EXPECT_EQ(echoed.out, "{\"payload\":{}}\n") << echoed;
  EXPECT_EQ(echoed.err,
            "> x-grpc-test-echo-trailing-bin: \\xab\\xab\\xab\n"
            "< [trailer] x-grpc-test-echo-trailing-bin: \\xab\\xab\\xab\n")
      << echoed;

  // A status message that is not UTF-8 arrives; the CLI escapes the byte.
  RunResult latin1 = Cli({"call", Addr(interop_), unary, "{}", "--metadata",
                          "x-test-status-message-bin=bad file caf\xe9.txt"});
  EXPECT_EQ(latin1.exit_code, 64 + 2) << latin1;
  EXPECT_EQ(latin1.err, "UNKNOWN: bad file caf\\xe9.txt\n") << latin1;

  // A bad header key fails the call before it is sent.
  RunResult upper =
      Cli({"call", Addr(interop_), unary, "{}", "--metadata", "X-Upper=v"});
  EXPECT_EQ(upper.exit_code, 64 + 3) << upper;
  EXPECT_EQ(upper.err,
            "INVALID_ARGUMENT: request headers has an invalid key \"X-Upper\" "
            "(keys are lower-case: only a-z, 0-9, '-', '_' and '.')\n")
      << upper;

  // A handler's bad trailer key fails its call with INTERNAL.
  RunResult bad_trailer = Cli({"call", Addr(interop_), unary, "{}",
                               "--metadata", "x-test-bad-trailer=1"});
  EXPECT_EQ(bad_trailer.exit_code, 64 + 13) << bad_trailer;
  EXPECT_TRUE(absl::StartsWith(
      bad_trailer.err,
      "INTERNAL: response trailers has an invalid key \"Bad Key\""))
      << bad_trailer;

  // The server is unharmed.
  RunResult after = Cli({"call", Addr(interop_), unary,
                         R"({"payload":{"body":"b2s="}})"});
  EXPECT_EQ(after.exit_code, 0) << after;
  EXPECT_EQ(after.out, "{\"payload\":{\"body\":\"b2s=\"}}\n") << after;
}

TEST_F(CliTest, ListWithProtoSaysTheServerWasNotAsked) {
  RunResult r = Cli({"list", Addr(server_), "--proto", kEchoProto, "-I",
                     RunfilesRoot()});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "bevrpc.echo.Echo\n") << r;
  EXPECT_EQ(r.err, absl::StrCat("bevrpc: the services defined in the --proto "
                                "files; ",
                                Addr(server_),
                                " was not asked which it serves\n"))
      << r;
}

// --- call: bad input ---------------------------------------------------------

TEST_F(CliTest, CallBadJsonSyntaxIsBadInputOnOneLine) {
  for (const char* json :
       {R"({"message":)", "hello", R"({"message":"hi"} x)"}) {
    SCOPED_TRACE(json);
    RunResult r = Cli({"call", Addr(server_), kEcho, json});
    EXPECT_EQ(r.exit_code, 3) << r;
    EXPECT_EQ(r.out, "") << r;
    EXPECT_TRUE(absl::StartsWith(r.err, "bevrpc: request is not a JSON object"))
        << r;
    // Known bug: protobuf's parse error carries the input and a caret on
    // extra lines, which ParseJsonRequest passes through.
    EXPECT_TRUE(IsOneLine(r.err)) << r;
  }
}

TEST_F(CliTest, CallWrongValueTypeIsBadInput) {
  RunResult r = Cli({"call", Addr(server_), kEcho, R"({"delay_ms":"soon"})"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "delay_ms")) << r;
}

TEST_F(CliTest, CallUnknownFieldSuggestsTheClosest) {
  RunResult r = Cli({"call", Addr(server_), kEcho, R"({"mesage":"hi"})"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_EQ(r.err,
            "bevrpc: unknown field \"mesage\" in bevrpc.echo.EchoRequest, "
            "did you mean \"message\"?\n")
      << r;
}

TEST_F(CliTest, CallUnknownMethodNamesTheAvailableOnes) {
  RunResult r = Cli({"call", Addr(server_), "bevrpc.echo.Echo/Ekko", "{}"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_EQ(r.err,
            "bevrpc: unknown method \"Ekko\" of service bevrpc.echo.Echo; "
            "it has: Echo, Expand, Collect, Chat\n")
      << r;
}

TEST_F(CliTest, CallUnknownServiceNamesTheAvailableOnes) {
  RunResult r = Cli({"call", Addr(server_), "bevrpc.nope.Nope/Echo", "{}"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "\"bevrpc.nope.Nope\"")) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "bevrpc.echo.Echo")) << r;
}

// --- call: failed calls ------------------------------------------------------

TEST_F(CliTest, CallDeadlineExceeded) {
  RunResult r = Cli({"call", Addr(server_), kEcho, R"({"delay_ms":2000})",
                     "--timeout", "100ms"});
  EXPECT_EQ(r.exit_code, 64 + 4) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StartsWith(r.err, "DEADLINE_EXCEEDED:")) << r;
  // Well before the 2 s the server would take.
  EXPECT_LT(r.elapsed, absl::Seconds(1)) << r;

  // The abandoned call leaves the server working.
  RunResult after =
      Cli({"call", Addr(server_), kEcho, R"({"message":"still"})"});
  EXPECT_EQ(after.exit_code, 0) << after;
  EXPECT_EQ(after.out, "{\"message\":\"still\"}\n") << after;
}

TEST_F(CliTest, CallFailCodeMapsToExitCode) {
  RunResult r = Cli({"call", Addr(server_), kEcho,
                     R"({"fail_code":5,"fail_message":"msg"})"});
  EXPECT_EQ(r.exit_code, 69) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_EQ(r.err, "NOT_FOUND: msg\n") << r;
}

TEST_F(CliTest, CallEveryCanonicalCodeMapsTo64PlusCode) {
  for (int code = 1; code <= 16; ++code) {
    const std::string name =
        absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    SCOPED_TRACE(name);
    RunResult r = Cli({"call", Addr(server_), kEcho,
                       absl::StrCat(R"({"fail_code":)", code,
                                    R"(,"fail_message":"m)", code, "\"}")});
    EXPECT_EQ(r.exit_code, 64 + code) << r;
    EXPECT_EQ(r.out, "") << r;
    EXPECT_EQ(r.err, absl::StrCat(name, ": m", code, "\n")) << r;
  }
}

TEST_F(CliTest, CallUnreachableServerIsUnavailable) {
  // Through reflection (the lookup fails) and with --proto (the call fails).
  for (bool with_proto : {false, true}) {
    SCOPED_TRACE(with_proto ? "--proto" : "reflection");
    std::vector<std::string> args = {"call", ClosedAddr(), kEcho, "{}"};
    if (with_proto) {
      args.insert(args.end(), {"--proto", kEchoProto, "-I", RunfilesRoot()});
    }
    RunResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 78) << r;
    EXPECT_EQ(r.out, "") << r;
    EXPECT_TRUE(IsOneLine(r.err)) << r;
    EXPECT_TRUE(absl::StrContains(r.err, "UNAVAILABLE")) << r;
    EXPECT_TRUE(absl::StrContains(r.err, ClosedAddr())) << r;
  }
}

// --- call: --proto when reflection is off ------------------------------------

TEST_F(CliTest, CallWithProtoFileWhenReflectionIsOff) {
  RunResult r = Cli({"call", Addr(no_reflection_), kEcho, R"({"message":"hi"})",
                     "--proto", kEchoProto, "-I", RunfilesRoot()});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "{\"message\":\"hi\"}\n") << r;
  EXPECT_EQ(r.err, "") << r;

  RunResult list = Cli({"list", Addr(no_reflection_), "--proto", kEchoProto,
                        absl::StrCat("-I", RunfilesRoot())});
  EXPECT_EQ(list.exit_code, 0) << list;
  EXPECT_EQ(list.out, "bevrpc.echo.Echo\n") << list;
}

TEST_F(CliTest, CallWithoutProtoWhenReflectionIsOffSaysPassProto) {
  RunResult r =
      Cli({"call", Addr(no_reflection_), kEcho, R"({"message":"hi"})"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_EQ(r.exit_code, 64 + 12) << r;  // UNIMPLEMENTED, from the server.
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "reflection turned off")) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "--proto")) << r;
}

TEST_F(CliTest, CallWithMissingProtoFileNamesIt) {
  RunResult r = Cli({"call", Addr(no_reflection_), kEcho, "{}", "--proto",
                     "services/echo/nope.proto", "-I", RunfilesRoot()});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(
      absl::StartsWith(r.err, "bevrpc: cannot load services/echo/nope.proto"))
      << r;
  // Known bug: the importer's "File not found." comes on a second line
  // (with a bogus "nope.proto:0:1" position) followed by a blank line.
  EXPECT_TRUE(IsOneLine(r.err)) << r;
}

// --- health -----------------------------------------------------------------

// bench: a few seconds of load, as a human summary and as the JSON line of
// the benchmark harness's contract.
TEST_F(CliTest, BenchPrintsSummary) {
  RunResult r = Cli({"bench", Addr(server_), kEcho, R"({"message":"load"})",
                     "-c", "8", "--connections", "2", "-z", "1s", "--warmup",
                     "200ms"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(absl::StrContains(r.out, "qps")) << r;
  EXPECT_TRUE(absl::StrContains(r.out, "p99.9")) << r;
  EXPECT_TRUE(absl::StrContains(r.out, "histogram")) << r;
  EXPECT_TRUE(absl::StrContains(r.out, "errors      0")) << r;
}

TEST_F(CliTest, BenchJsonLineHasTheContractKeys) {
  RunResult r = Cli({"bench", Addr(server_), kEcho, R"({"message":"load"})",
                     "-c", "4", "-z", "1s", "--warmup", "100ms", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r;
  ASSERT_TRUE(absl::StartsWith(r.out, "{")) << r;
  for (const char* key : {"\"system\":\"bevrpc\"", "\"connections\":1",
                          "\"concurrency\":4", "\"qps\":", "\"p50_us\":",
                          "\"p90_us\":", "\"p99_us\":", "\"p999_us\":",
                          "\"errors\":0"}) {
    EXPECT_TRUE(absl::StrContains(r.out, key)) << key << "\n" << r;
  }
}

// Two servers behind one list:/// target: calls reach both, and the JSON
// line and the summary say how many each got.
TEST_F(CliTest, BenchOverAListReportsCallsPerEndpoint) {
  std::string target =
      absl::StrCat("list:///", Addr(server_), ",", Addr(not_serving_));
  RunResult r = Cli({"bench", target, kEcho, R"({"message":"load"})", "-c",
                     "4", "-z", "1s", "--warmup", "100ms", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (ServerProcess* s : {server_, not_serving_}) {
    std::string key = absl::StrCat("\"", Addr(s), "\":");
    size_t at = r.out.find(key);
    ASSERT_NE(at, std::string::npos) << key << "\n" << r;
    int64_t calls = 0;
    ASSERT_TRUE(absl::SimpleAtoi(
        r.out.substr(at + key.size(),
                     r.out.find_first_of(",}", at + key.size()) - at - key.size()),
        &calls))
        << r;
    EXPECT_GT(calls, 100) << key << "\n" << r;
  }
  RunResult human = Cli({"bench", target, kEcho, "{}", "-n", "100", "--warmup",
                         "0s", "--lb", "pick_first"});
  EXPECT_EQ(human.exit_code, 0) << human;
  EXPECT_TRUE(absl::StrContains(human.out, "endpoints   ")) << human;
  EXPECT_TRUE(
      absl::StrContains(human.out, absl::StrCat(Addr(server_), " 100 (100.0%)")))
      << human;
  EXPECT_TRUE(absl::StrContains(human.out,
                                absl::StrCat(Addr(not_serving_), " 0 (0.0%)")))
      << human;
}

TEST_F(CliTest, ResolvePrintsEndpointsAndTheirState) {
  std::string target =
      absl::StrCat("list:///", Addr(server_), ",", ClosedAddr());
  RunResult r = Cli({"resolve", target});
  EXPECT_EQ(r.exit_code, 0) << r;
  std::vector<std::string> lines = {
      absl::StrCat(Addr(server_), " READY"),
      absl::StrCat(ClosedAddr(), " TRANSIENT_FAILURE")};
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(r.out, absl::StrCat(lines[0], "\n", lines[1], "\n")) << r;
}

TEST_F(CliTest, ResolveReadsEndpointFilesWithMetadata) {
  std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/endpoints");
  {
    std::ofstream out(path);
    out << Addr(server_) << " weight=5 zone=z1 id=echo-0 version=2\n";
  }
  RunResult r = Cli({"resolve", "file://" + path});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, absl::StrCat(Addr(server_),
                                " READY weight=5 zone=z1 id=echo-0 version=2\n"))
      << r;
  RunResult missing = Cli({"resolve", "file:///no/such/file", "--timeout", "5s"});
  EXPECT_EQ(missing.exit_code, 78) << missing;
  EXPECT_TRUE(absl::StrContains(missing.err, "/no/such/file")) << missing;
}

TEST_F(CliTest, BadLoadBalancerIsAUsageError) {
  RunResult r = Cli({"call", Addr(server_), kEcho, "{}", "--lb", "fastest"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "unknown load balancer \"fastest\""))
      << r;
}

TEST_F(CliTest, BenchCountsFailedCallsByCode) {
  RunResult r = Cli({"bench", Addr(server_), kEcho,
                     R"({"fail_code":5,"fail_message":"x"})", "-n", "50",
                     "--warmup", "0s"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_TRUE(absl::StrContains(r.out, "NOT_FOUND")) << r;
}

TEST_F(CliTest, HealthServing) {
  for (ServerProcess* s : {server_, no_reflection_}) {
    for (std::vector<std::string> args :
         {std::vector<std::string>{"health", Addr(s)},
          std::vector<std::string>{"health", Addr(s), "bevrpc.echo.Echo"}}) {
      SCOPED_TRACE(absl::StrJoin(args, " "));
      RunResult r = Cli(args);
      EXPECT_EQ(r.exit_code, 0) << r;
      EXPECT_EQ(r.out, "SERVING\n") << r;
      EXPECT_EQ(r.err, "") << r;
    }
  }
}

TEST_F(CliTest, HealthNotServing) {
  for (const char* service : {"", "bevrpc.echo.Echo", "test.A", "test.B"}) {
    SCOPED_TRACE(service);
    std::vector<std::string> args = {"health", Addr(not_serving_)};
    if (*service != '\0') args.push_back(service);
    RunResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_EQ(r.out, "NOT_SERVING\n") << r;
    EXPECT_EQ(r.err, "") << r;
  }
  // Services not marked keep serving.
  RunResult r = Cli({"health", Addr(not_serving_), "bevrpc.health.v1.Health"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "SERVING\n") << r;
}

TEST_F(CliTest, HealthUnknownServiceIsNotFound) {
  RunResult r = Cli({"health", Addr(server_), "bevrpc.nope.Nope"});
  EXPECT_EQ(r.exit_code, 69) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "NOT_FOUND")) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "\"bevrpc.nope.Nope\"")) << r;
}

TEST_F(CliTest, HealthUnreachableIsUnavailable) {
  RunResult r = Cli({"health", ClosedAddr()});
  EXPECT_EQ(r.exit_code, 78) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(IsOneLine(r.err)) << r;
  EXPECT_TRUE(absl::StrContains(r.err, "UNAVAILABLE")) << r;
  EXPECT_TRUE(absl::StrContains(r.err, ClosedAddr())) << r;
}

// --- usage ------------------------------------------------------------------

TEST_F(CliTest, MainHelpListsTheCommands) {
  for (const char* flag : {"--help", "-h", "help"}) {
    SCOPED_TRACE(flag);
    RunResult r = Cli({flag});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_TRUE(absl::StrContains(r.out, "usage: bevrpc COMMAND")) << r;
    for (const char* verb :
         {"list", "describe", "call", "health", "completion"}) {
      EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat("\n  ", verb, " ")))
          << r;
    }
    EXPECT_EQ(r.err, "") << r;
  }
}

// `bevrpc VERB --help`: exit 0, the usage on stdout, and an example.
void ExpectHelp(const std::string& verb) {
  RunResult r = Cli({verb, "--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(absl::StartsWith(r.out, absl::StrCat("usage: bevrpc ", verb)))
      << r;
  EXPECT_TRUE(absl::StrContains(r.out, "example")) << r;
  EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat("\n  bevrpc ", verb, " ")))
      << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(CliTest, HelpForEachCommandHasUsageAndAnExample) {
  for (const char* verb : {"list", "describe", "call", "health"}) {
    SCOPED_TRACE(verb);
    ExpectHelp(verb);
  }
}

TEST_F(CliTest, CompletionHelpHasUsageAndAnExample) {
  // Known bug: Completion() accepts only "bash" and answers --help with a
  // usage error (exit 2, "bevrpc: usage: bevrpc completion bash" on stderr).
  ExpectHelp("completion");
}

TEST_F(CliTest, NoCommandPrintsHelpAndIsUsageError) {
  RunResult r = Cli({});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_TRUE(absl::StrContains(r.err, "usage: bevrpc COMMAND")) << r;
}

TEST_F(CliTest, UnknownCommandIsUsageError) {
  RunResult r = Cli({"frobnicate", Addr(server_)});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_EQ(r.out, "") << r;
  EXPECT_EQ(FirstLine(r.err), "bevrpc: unknown command \"frobnicate\"") << r;
}

TEST_F(CliTest, UnknownFlagIsUsageErrorForEachCommand) {
  const std::vector<std::vector<std::string>> commands = {
      {"list", Addr(server_)},
      {"describe", Addr(server_), "bevrpc.echo.Echo"},
      {"call", Addr(server_), kEcho, "{}"},
      {"health", Addr(server_)},
  };
  for (std::vector<std::string> args : commands) {
    args.push_back("--frobnicate");
    SCOPED_TRACE(absl::StrJoin(args, " "));
    RunResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_EQ(r.out, "") << r;
    EXPECT_EQ(FirstLine(r.err), "bevrpc: unknown flag --frobnicate") << r;
  }
}

TEST_F(CliTest, BadArgumentsAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string first_line;
  };
  const std::string addr = Addr(server_);
  const std::vector<Case> cases = {
      {{"call", addr},
       "bevrpc: call needs ADDR, METHOD and an optional JSON request"},
      {{"list"}, "bevrpc: list needs ADDR and an optional SERVICE"},
      {{"describe", addr}, "bevrpc: describe needs ADDR and SYMBOL"},
      {{"call", addr, kEcho, "--timeout"},
       "bevrpc: flag --timeout needs a value"},
      {{"call", addr, kEcho, "--timeout=soon"},
       "bevrpc: bad --timeout \"soon\" (a duration such as 500ms or 2s)"},
      {{"call", addr, kEcho, "--format=yaml"},
       "bevrpc: unknown --format \"yaml\" (json, text or binary)"},
      {{"call", addr, kEcho, "--metadata", "novalue"},
       "bevrpc: bad --metadata \"novalue\" (KEY=VALUE)"},
      {{"call", "localhost", kEcho},
       "bevrpc: target \"localhost\" does not parse: \"localhost\" needs a "
       "port (HOST:PORT) (accepted: HOST:PORT, [V6]:PORT, dns:///HOST:PORT, "
       "dns://DNS_SERVER/HOST:PORT, list:///HOST:PORT,HOST:PORT..., "
       "file:///ABSOLUTE/PATH, etcd://HOST:PORT[,HOST:PORT...]/PREFIX)"},
      {{"completion", "zsh"}, "bevrpc: completion needs a shell name: bash"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    RunResult r = Cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << r;
    EXPECT_EQ(r.out, "") << r;
    EXPECT_EQ(FirstLine(r.err), c.first_line) << r;
  }
}

TEST_F(CliTest, CompletionBashPrintsAWorkingScript) {
  RunResult r = Cli({"completion", "bash"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.err, "") << r;
  EXPECT_TRUE(absl::StrContains(r.out, "complete -F _bevrpc bevrpc")) << r;

  // Source it and complete "bevrpc ca<TAB>" and "bevrpc call --form<TAB>".
  if (access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "no /bin/bash";
  std::string script = TempFile("bevrpc_completion.bash", r.out);
  RunResult bash = RunProcess(
      "/bin/bash",
      {"--norc", "--noprofile", "-c",
       absl::StrCat(
           "source ", script,
           " && COMP_WORDS=(bevrpc ca) COMP_CWORD=1 && _bevrpc && "
           "echo \"${COMPREPLY[*]}\" && "
           "COMP_WORDS=(bevrpc call --form) COMP_CWORD=2 && _bevrpc && "
           "echo \"${COMPREPLY[*]}\"")});
  EXPECT_EQ(bash.exit_code, 0) << bash;
  EXPECT_EQ(bash.out, "call\n--format\n") << bash;
  EXPECT_EQ(bash.err, "") << bash;
}

}  // namespace
}  // namespace bevrpc
