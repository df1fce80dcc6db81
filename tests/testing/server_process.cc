// ServerProcess: a server binary run as a child process (see server_process.h).
#include "tests/testing/server_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace bevrpc {
namespace testing {
namespace {

constexpr absl::string_view kWorkspace = "bevrpc";
constexpr absl::string_view kReadyPrefix = "listening on 127.0.0.1:";

// Milliseconds left until `deadline`, clamped to [0, INT_MAX] for poll().
int PollMillis(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms < 0) return 0;
  if (ms > 1000000) return 1000000;
  return static_cast<int>(ms);
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status), " (",
                        strsignal(WTERMSIG(wait_status)), ")");
  }
  return absl::StrCat("ended with wait status ", wait_status);
}

// Parses "listening on 127.0.0.1:PORT" into PORT; -1 if `line` is not that.
int ParseReadyLine(absl::string_view line) {
  if (!absl::ConsumePrefix(&line, kReadyPrefix)) return -1;
  int port = 0;
  if (!absl::SimpleAtoi(line, &port) || port <= 0 || port > 65535) return -1;
  return port;
}

// Kills and reaps a child that failed to start properly.
void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

absl::StatusOr<std::string> RunfilePath(absl::string_view runfiles_path) {
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    const char* dir = getenv(var);
    if (dir == nullptr || *dir == '\0') continue;
    std::string path = absl::StrCat(dir, "/", kWorkspace, "/", runfiles_path);
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return absl::NotFoundError(
      absl::StrCat("runfile ", runfiles_path,
                   " not found under $TEST_SRCDIR or $RUNFILES_DIR (is it in "
                   "the test's data?)"));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    absl::string_view runfiles_path, const std::vector<std::string>& args,
    absl::Duration startup_timeout) {
  absl::StatusOr<std::string> binary = RunfilePath(runfiles_path);
  if (!binary.ok()) return binary.status();

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);

  std::vector<std::string> argv_strings = {*binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary->c_str(), &actions, nullptr, argv.data(),
                       environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return absl::InternalError(
        absl::StrCat("posix_spawn ", *binary, ": ", strerror(rc)));
  }

  // Read stdout line by line until the ready line, EOF or the deadline.
  const absl::Time deadline = absl::Now() + startup_timeout;
  std::string pending;
  std::string seen;  // Everything read, for the error message.
  while (true) {
    size_t newline = pending.find('\n');
    while (newline != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      int port = ParseReadyLine(line);
      if (port > 0) {
        if (!pending.empty()) fputs(pending.c_str(), stderr);
        return std::unique_ptr<ServerProcess>(
            new ServerProcess(pid, pipe_fds[0], port));
      }
      fprintf(stderr, "[server stdout] %s\n", line.c_str());
      newline = pending.find('\n');
    }
    struct pollfd pfd = {pipe_fds[0], POLLIN, 0};
    int ready = poll(&pfd, 1, PollMillis(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      close(pipe_fds[0]);
      KillAndReap(pid);
      return absl::DeadlineExceededError(absl::StrCat(
          *binary, " printed no \"", kReadyPrefix, "PORT\" line within ",
          absl::FormatDuration(startup_timeout), "; stdout was: \"", seen,
          "\""));
    }
    char buf[4096];
    ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(pipe_fds[0]);
      int status = 0;
      // The child closed stdout; it has exited or is about to.
      absl::Time reap_deadline = absl::Now() + absl::Seconds(2);
      while (waitpid(pid, &status, WNOHANG) == 0 &&
             absl::Now() < reap_deadline) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      KillAndReap(pid);
      return absl::UnavailableError(absl::StrCat(
          *binary, " closed stdout before the ready line (",
          DescribeWaitStatus(status), "); stdout was: \"", seen, "\""));
    }
    pending.append(buf, n);
    seen.append(buf, n);
  }
}

ServerProcess::ServerProcess(pid_t pid, int stdout_fd, int port)
    : pid_(pid), stdout_fd_(stdout_fd), port_(port) {
  forwarder_ = std::thread([this] { ForwardStdout(); });
}

ServerProcess::~ServerProcess() {
  Stop().IgnoreError();
}

void ServerProcess::ForwardStdout() {
  char buf[4096];
  while (!stop_forwarding_.load()) {
    struct pollfd pfd = {stdout_fd_, POLLIN, 0};
    int ready = poll(&pfd, 1, 50);
    if (ready <= 0) continue;
    ssize_t n = read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    fwrite(buf, 1, n, stderr);
  }
}

void ServerProcess::Reaped(int wait_status) {
  exited_ = true;
  wait_status_ = wait_status;
}

bool ServerProcess::IsRunning() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    Reaped(status);
    return false;
  }
  return true;
}

absl::Status ServerProcess::Stop(absl::Duration grace) {
  if (stopped_) return stop_status_;
  stopped_ = true;
  bool killed = false;
  if (IsRunning()) {
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + grace;
    while (IsRunning() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (IsRunning()) {
      killed = true;
      kill(pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      Reaped(status);
    }
  } else {
    stop_status_ = absl::InternalError(absl::StrCat(
        "server pid ", pid_, " had already ", DescribeWaitStatus(wait_status_),
        " before SIGTERM"));
  }
  stop_forwarding_.store(true);
  if (forwarder_.joinable()) forwarder_.join();
  close(stdout_fd_);

  if (!stop_status_.ok()) return stop_status_;
  if (killed) {
    stop_status_ = absl::DeadlineExceededError(
        absl::StrCat("server pid ", pid_, " did not exit within ",
                     absl::FormatDuration(grace), " of SIGTERM; SIGKILLed"));
  } else if (!WIFEXITED(wait_status_) || WEXITSTATUS(wait_status_) != 0) {
    stop_status_ = absl::InternalError(
        absl::StrCat("server pid ", pid_, " ",
                     DescribeWaitStatus(wait_status_), " after SIGTERM"));
  }
  return stop_status_;
}

}  // namespace testing
}  // namespace bevrpc
