#include "tools/launch/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace bevrpc::launch {
namespace {

// Our environment with `extra` added (extra wins).
std::vector<std::string> MergedEnv(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    env[kv.substr(0, kv.find('='))] = kv;
  }
  for (const std::string& kv : extra) env[kv.substr(0, kv.find('='))] = kv;
  std::vector<std::string> out;
  for (auto& [unused, kv] : env) out.push_back(std::move(kv));
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child: only async-signal-safe calls until execve.
[[noreturn]] void ExecChild(const char* binary, char* const* argv,
                            char* const* envp, int output_fd, int status_fd,
                            pid_t parent, int death_signal, int max_fd) {
  setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  prctl(PR_SET_PDEATHSIG, death_signal);
  if (getppid() != parent) _exit(127);  // The launcher is already gone.
  dup2(output_fd, STDOUT_FILENO);
  dup2(output_fd, STDERR_FILENO);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  // Every other descriptor closes at exec (the status pipe already does).
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < max_fd; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  execve(binary, argv, envp);
  int err = errno;
  (void)!write(status_fd, &err, sizeof(err));
  _exit(127);
}

// The parent's side of the status pipe: 0 if exec succeeded, else errno.
int ReadExecStatus(int status_fd) {
  int err = 0;
  ssize_t n;
  do {
    n = read(status_fd, &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  close(status_fd);
  return n == sizeof(err) ? err : 0;
}

}  // namespace

absl::StatusOr<Child> SpawnChild(const ChildSpec& spec) {
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<std::string> env_strings = MergedEnv(spec.env);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);
  int output[2], status[2];
  if (pipe2(output, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  if (pipe2(status, O_CLOEXEC) != 0) {
    close(output[0]);
    close(output[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  const int max_fd = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20));
  pid_t pid = fork();
  if (pid == 0) {
    ExecChild(spec.binary.c_str(), argv.data(), envp.data(), output[1],
              status[1], parent, spec.death_signal, max_fd);
  }
  int fork_errno = errno;
  close(output[1]);
  close(status[1]);
  if (pid < 0) {
    close(output[0]);
    close(status[0]);
    return absl::InternalError(
        absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  setpgid(pid, pid);  // Also here: no window where a kill(-pid) misses it.
  if (int err = ReadExecStatus(status[0]); err != 0) {
    close(output[0]);
    waitpid(pid, nullptr, 0);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot run ", spec.binary, ": ", std::strerror(err)));
  }
  return Child{pid, output[0]};
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrCat("exit ", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("signal ", WTERMSIG(wait_status));
  }
  return absl::StrCat("status ", wait_status);
}

absl::StatusOr<int> PickFreePort(const std::string& host) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host \"", host, "\": port 0 needs a numeric IPv4 address"));
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  socklen_t len = sizeof(addr);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc == 0) rc = getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int err = errno;
  close(fd);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "no free port on ", host, ": ", std::strerror(err)));
  }
  return ntohs(addr.sin_port);
}

}  // namespace bevrpc::launch
