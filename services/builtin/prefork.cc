#include "services/builtin/prefork.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace bevrpc::builtin {

absl::StatusOr<ReservedPort> ReservePort(absl::string_view host, int port) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string h(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "host \"", host, "\" is not a numeric IPv4 or IPv6 address"));
  }
  int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat(
        "binding ", JoinHostPort(host, port), " with SO_REUSEPORT: ",
        strerror(err)));
  }
  ReservedPort reserved;
  reserved.fd = fd;
  reserved.port = ntohs(addr.ss_family == AF_INET ? v4->sin_port
                                                  : v6->sin6_port);
  return reserved;
}

absl::StatusOr<int> ParseWorkers(absl::string_view text) {
  int n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < 1 || n > kMaxWorkers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--workers=", text, ": expected a number of worker processes from 1 ",
        "to ", kMaxWorkers, " (1 = no master process)"));
  }
  return n;
}

absl::Duration RestartBackoff(const PreforkOptions& options,
                              int fast_failures) {
  absl::Duration d = options.initial_backoff;
  for (int i = 1; i < fast_failures && d < options.max_backoff; ++i) d *= 2;
  return std::min(d, options.max_backoff);
}

std::string JoinHostPort(absl::string_view host, int port) {
  if (host.find(':') != absl::string_view::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

void ReportReady(const WorkerContext& worker) {
  if (worker.ready_fd < 0) return;
  char byte = 'R';
  while (write(worker.ready_fd, &byte, 1) < 0 && errno == EINTR) {
  }
  close(worker.ready_fd);
}

namespace {

// Threads of this process, from /proc/self/task (-1 if unreadable).
int CountThreads() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// How a child ended, for log lines.
std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(wait_status), " (",
                        strsignal(WTERMSIG(wait_status)), ")");
  }
  return absl::StrCat("ended with wait status ", wait_status);
}

// Warns when a stopping worker's queued connections would be reset.
void WarnUnlessMigrating(const std::string& name) {
  std::ifstream in("/proc/sys/net/ipv4/tcp_migrate_req");
  std::string value;
  if (in >> value && value == "1") return;
  std::cerr << name << ": --workers: net.ipv4.tcp_migrate_req is "
            << (value.empty() ? "not available (Linux < 5.14)"
                              : absl::StrCat(value))
            << ": connections waiting in the accept queue of a worker that "
               "stops (SIGHUP, a crash) are reset instead of moving to "
               "another worker; set it to 1 (sysctl -w "
               "net.ipv4.tcp_migrate_req=1) for restarts without reset "
               "connections\n";
}

// One worker process the master started and has not reaped yet.
struct Proc {
  pid_t pid = 0;
  int slot = 0;
  int ready_fd = -1;  // Read end of its readiness pipe; -1 once done.
  bool ready = false;
  bool stopping = false;  // The master sent it SIGTERM.
  absl::Time started;
  absl::Time kill_at = absl::InfiniteFuture();  // SIGKILL if still alive.
};

// A worker index: what the master keeps across its processes.
struct Slot {
  int fast_failures = 0;
  absl::Time restart_at = absl::InfiniteFuture();
};

// The master's state and event loop. Single-threaded.
class Master {
 public:
  Master(const PreforkOptions& options, ReservedPort port, WorkerFn worker)
      : o_(options), port_(port), worker_(worker), slots_(options.workers) {}

  int Run();

 private:
  // One write per line: workers share the terminal.
  void Log(absl::string_view text) {
    std::cerr << absl::StrCat(o_.name, ": ", text, "\n");
  }
  Proc* Find(pid_t pid);
  // A process of `slot` that the master did not tell to stop (ready or
  // not, or only ready ones).
  Proc* Current(int slot, bool ready_only);
  pid_t Spawn(int slot);
  [[noreturn]] void BecomeWorker(int slot, int ready_fd);
  void WaitForEvents();
  void OnSignals();
  void Reap();
  void OnExit(const Proc& proc, int wait_status);
  void OnReadable(pid_t pid);
  void OnReady(Proc& proc);
  void OnTimers();
  void Terminate(Proc& proc);
  void Stop(int exit_code);
  void StartRoll();
  void RollFrom(int slot);
  void EndRoll(absl::string_view why);

  const PreforkOptions o_;
  ReservedPort port_;
  WorkerFn worker_;
  const pid_t master_pid_ = getpid();
  int signal_fd_ = -1;
  std::vector<Proc> procs_;  // At most two per slot (during a roll).
  std::vector<Slot> slots_;
  bool announced_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
  // Rolling restart (SIGHUP): the slot being replaced, its new and old
  // worker, and whether another SIGHUP came meanwhile.
  int roll_slot_ = -1;
  pid_t roll_new_ = 0;
  pid_t roll_old_ = 0;
  bool roll_again_ = false;
};

Proc* Master::Find(pid_t pid) {
  for (Proc& p : procs_) {
    if (p.pid == pid) return &p;
  }
  return nullptr;
}

Proc* Master::Current(int slot, bool ready_only) {
  for (Proc& p : procs_) {
    if (p.slot == slot && !p.stopping && (p.ready || !ready_only)) return &p;
  }
  return nullptr;
}

pid_t Master::Spawn(int slot) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    Log(absl::StrCat("pipe: ", strerror(errno)));
    return -1;
  }
  std::cout.flush();
  fflush(nullptr);  // Or the child would write our buffered output again.
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    BecomeWorker(slot, fds[1]);
  }
  close(fds[1]);
  if (pid < 0) {
    Log(absl::StrCat("fork: ", strerror(errno)));
    close(fds[0]);
    return -1;
  }
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  Proc p;
  p.pid = pid;
  p.slot = slot;
  p.ready_fd = fds[0];
  p.started = absl::Now();
  p.kill_at = p.started + o_.ready_timeout;
  procs_.push_back(p);
  Log(absl::StrCat("worker ", slot, " started, pid ", pid));
  return pid;
}

void Master::BecomeWorker(int slot, int ready_fd) {
  // A master that dies (even by SIGKILL) makes its workers drain and exit.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != master_pid_) _exit(1);  // It died before prctl.
  close(signal_fd_);
  close(port_.fd);
  for (const Proc& p : procs_) {
    if (p.ready_fd >= 0) close(p.ready_fd);
  }
  // The worker sigwait()s for SIGTERM/SIGINT; SIGHUP is the master's.
  signal(SIGHUP, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  WorkerContext ctx;
  ctx.index = slot;
  ctx.master_pid = master_pid_;
  ctx.port = port_.port;
  ctx.ready_fd = ready_fd;
  std::exit(worker_(ctx));
}

// ThreadSanitizer runs a thread of its own (and is fork-aware): not one of
// the program's. Detected at run time: the tsan build undefines
// __SANITIZE_THREAD__ (.bazelrc).
extern "C" void __tsan_init() __attribute__((weak));
int RuntimeThreads() { return &__tsan_init != nullptr ? 1 : 0; }

int Master::Run() {
  if (int threads = CountThreads(); threads > 1 + RuntimeThreads()) {
    Log(absl::StrCat("--workers: the master must be single-threaded to fork "
                     "safely, but has ",
                     threads, " threads"));
    close(port_.fd);
    return 1;
  }
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) {
    Log(absl::StrCat("signalfd: ", strerror(errno)));
    close(port_.fd);
    return 1;
  }
  WarnUnlessMigrating(o_.name);
  for (int slot = 0; slot < o_.workers && !stopping_; ++slot) {
    if (Spawn(slot) < 0) Stop(1);
  }
  while (!stopping_ || !procs_.empty()) {
    WaitForEvents();
    OnTimers();
  }
  close(signal_fd_);
  close(port_.fd);
  return exit_code_;
}

void Master::WaitForEvents() {
  std::vector<pollfd> fds;
  fds.push_back({signal_fd_, POLLIN, 0});
  std::vector<pid_t> pids;
  for (const Proc& p : procs_) {
    if (p.ready_fd < 0) continue;
    fds.push_back({p.ready_fd, POLLIN, 0});
    pids.push_back(p.pid);
  }
  absl::Time next = absl::InfiniteFuture();
  for (const Slot& s : slots_) next = std::min(next, s.restart_at);
  for (const Proc& p : procs_) next = std::min(next, p.kill_at);
  int timeout_ms = -1;
  if (next != absl::InfiniteFuture()) {
    timeout_ms = static_cast<int>(std::clamp<int64_t>(
        absl::ToInt64Milliseconds(next - absl::Now()) + 1, 0, 60000));
  }
  if (poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
  for (size_t i = 1; i < fds.size(); ++i) {
    if (fds[i].revents != 0) OnReadable(pids[i - 1]);
  }
  if (fds[0].revents != 0) OnSignals();
}

void Master::OnSignals() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
    switch (info.ssi_signo) {
      case SIGCHLD:
        Reap();
        break;
      case SIGHUP:
        StartRoll();
        break;
      default:
        if (!stopping_) {
          Log(absl::StrCat(info.ssi_signo == SIGTERM ? "got SIGTERM"
                                                     : "got SIGINT",
                           ", stopping ", procs_.size(), " workers"));
        }
        Stop(0);
    }
  }
}

void Master::Reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    Proc* p = Find(pid);
    if (p == nullptr) continue;
    Proc proc = *p;
    if (proc.ready_fd >= 0) close(proc.ready_fd);
    procs_.erase(procs_.begin() + (p - procs_.data()));
    OnExit(proc, status);
  }
}

void Master::OnReadable(pid_t pid) {
  Proc* p = Find(pid);
  if (p == nullptr || p->ready_fd < 0) return;
  char byte;
  ssize_t n = read(p->ready_fd, &byte, 1);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  close(p->ready_fd);  // One byte, or EOF from a worker that died first.
  p->ready_fd = -1;
  if (n == 1) OnReady(*p);
}

void Master::OnReady(Proc& proc) {
  proc.ready = true;
  if (proc.stopping || stopping_) return;
  proc.kill_at = absl::InfiniteFuture();
  if (!announced_) {
    for (int s = 0; s < o_.workers; ++s) {
      if (Current(s, /*ready_only=*/true) == nullptr) return;
    }
    announced_ = true;
    std::cout << "listening on " << JoinHostPort(o_.listen_host, port_.port)
              << std::endl;
    Log(absl::StrCat(o_.workers, " workers ready"));
  }
  if (proc.pid != roll_new_) return;
  // The replacement listens: now the old worker may go.
  Proc* old = nullptr;
  for (Proc& p : procs_) {
    if (p.slot == proc.slot && p.pid != proc.pid && !p.stopping) old = &p;
  }
  if (old == nullptr) {
    RollFrom(roll_slot_ + 1);
    return;
  }
  roll_old_ = old->pid;
  Terminate(*old);
}

void Master::OnExit(const Proc& proc, int wait_status) {
  Log(absl::StrCat("worker ", proc.slot, " (pid ", proc.pid, ") ",
                   DescribeExit(wait_status)));
  if (stopping_) return;
  if (proc.stopping) {  // The old worker of a rolling restart.
    if (proc.pid == roll_old_) RollFrom(roll_slot_ + 1);
    return;
  }
  if (!proc.ready && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 2) {
    Log("a worker reported a usage error; stopping");
    Stop(2);
    return;
  }
  if (proc.pid == roll_new_) EndRoll("its replacement failed");
  Slot& slot = slots_[proc.slot];
  bool fast = !proc.ready || absl::Now() - proc.started < o_.stable_after;
  slot.fast_failures = fast ? slot.fast_failures + 1 : 0;
  if (slot.fast_failures >= o_.max_fast_failures) {
    Log(absl::StrCat("FATAL: worker ", proc.slot, " failed ",
                     slot.fast_failures, " times in a row; giving up"));
    Stop(1);
    return;
  }
  if (Current(proc.slot, /*ready_only=*/false) != nullptr) return;
  absl::Duration backoff = RestartBackoff(o_, slot.fast_failures);
  slot.restart_at = absl::Now() + backoff;
  Log(absl::StrCat("restarting worker ", proc.slot, " in ",
                   absl::FormatDuration(backoff)));
}

void Master::OnTimers() {
  absl::Time now = absl::Now();
  for (int s = 0; s < o_.workers; ++s) {
    if (slots_[s].restart_at > now) continue;
    slots_[s].restart_at = absl::InfiniteFuture();
    if (!stopping_ && Current(s, /*ready_only=*/false) == nullptr &&
        Spawn(s) < 0) {
      Stop(1);
    }
  }
  for (Proc& p : procs_) {
    if (p.kill_at > now) continue;
    p.kill_at = absl::InfiniteFuture();
    Log(absl::StrCat("worker ", p.slot, " (pid ", p.pid, ") ",
                     p.stopping ? "did not stop in time" : "not ready in time",
                     "; sending SIGKILL"));
    kill(p.pid, SIGKILL);
  }
}

void Master::Terminate(Proc& proc) {
  proc.stopping = true;
  proc.kill_at = absl::Now() + o_.stop_timeout;
  kill(proc.pid, SIGTERM);
}

void Master::Stop(int exit_code) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = exit_code;
  for (Slot& s : slots_) s.restart_at = absl::InfiniteFuture();
  for (Proc& p : procs_) {
    if (!p.stopping) Terminate(p);
  }
}

void Master::StartRoll() {
  if (stopping_) return;
  if (roll_slot_ >= 0) {
    roll_again_ = true;
    return;
  }
  Log(absl::StrCat("got SIGHUP, restarting ", o_.workers,
                   " workers one at a time"));
  RollFrom(0);
}

void Master::RollFrom(int slot) {
  roll_new_ = 0;
  roll_old_ = 0;
  for (; slot < o_.workers; ++slot) {
    // A slot without a ready worker is starting anyway.
    if (Current(slot, /*ready_only=*/true) == nullptr) continue;
    roll_slot_ = slot;
    roll_new_ = Spawn(slot);
    if (roll_new_ < 0) EndRoll("fork failed");
    return;
  }
  EndRoll("");
}

void Master::EndRoll(absl::string_view why) {
  Log(why.empty() ? std::string("rolling restart done")
                  : absl::StrCat("rolling restart of worker ", roll_slot_,
                                 " abandoned: ", why));
  roll_slot_ = -1;
  roll_new_ = 0;
  roll_old_ = 0;
  if (roll_again_) {
    roll_again_ = false;
    StartRoll();
  }
}

}  // namespace

int RunPrefork(const PreforkOptions& options, ReservedPort port,
               WorkerFn worker) {
  return Master(options, port, worker).Run();
}

}  // namespace bevrpc::builtin
