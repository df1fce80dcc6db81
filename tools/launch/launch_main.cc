// bevrpc-launch: runs a topology of bevrpc services on one machine
// (tools/launch/topology.proto), supervises it, and serves
// bevrpc.launch.Launcher for control.
//
//   bazel-bin/tools/launch/bevrpc-launch services/shortener/topology.textproto
//   bevrpc call CONTROL bevrpc.launch.Launcher/Status '{}'
//   kill -HUP LAUNCHER_PID     # rolling restart
//   kill -TERM LAUNCHER_PID    # stop everything, dependents first; exit 0
//
// Prints (flushed at once) "state dir: DIR", "control listening on
// HOST:PORT" and, once every replica is ready, "ready: N processes, M
// services". Child output goes to stdout as "service/replica | line" and
// to STATE_DIR/logs/; the launcher's own messages go to stderr. Exit
// status: 0 after SIGTERM/SIGINT, 2 for a bad flag or topology, 1 if the
// topology could not start (a replica gave up before everything was ready).
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rpc/server.h"
#include "services/builtin/health_service.h"
#include "services/builtin/reflection_service.h"
#include "tools/launch/control_service.h"
#include "tools/launch/launch_flags.h"
#include "tools/launch/supervisor.h"
#include "tools/launch/systemd.h"
#include "tools/launch/topology.h"

namespace bevrpc::launch {
namespace {

sigset_t BlockControlSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

absl::StatusOr<std::string> MakeStateDir(const std::string& flag) {
  if (!flag.empty()) {
    if (flag[0] == '/') return flag;
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) return flag;
    return absl::StrCat(cwd, "/", flag);
  }
  const char* tmp = getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                   "/bevrpc-launch.XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", pattern));
  }
  return pattern;
}

// Waits for signals; announces readiness once. Returns the exit status.
int Supervise(Supervisor& supervisor, const sigset_t& signals) {
  bool announced = false;
  while (true) {
    if (!announced) {
      absl::Status s = supervisor.WaitStartup(absl::ZeroDuration());
      if (s.ok()) {
        std::cout << "ready: " << supervisor.num_processes() << " processes, "
                  << supervisor.num_services() << " services" << std::endl;
        announced = true;
      } else if (s.code() == absl::StatusCode::kFailedPrecondition) {
        std::cerr << "bevrpc-launch: " << s.message() << "; stopping\n";
        supervisor.Shutdown();
        return 1;
      }
    }
    timespec tick{0, 50 * 1000 * 1000};
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGHUP) {
      if (announced) {
        supervisor.RollingRestartAll();
      } else {
        std::cerr << "bevrpc-launch: SIGHUP before ready: ignored\n";
      }
    } else if (sig == SIGTERM || sig == SIGINT) {
      std::cerr << "bevrpc-launch: got "
                << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << "\n";
      supervisor.Shutdown();
      return 0;
    }
  }
}

int Run(const LaunchFlags& flags, LaunchPlan plan, const sigset_t& signals) {
  absl::StatusOr<std::string> state_dir = MakeStateDir(flags.state_dir);
  if (!state_dir.ok()) {
    std::cerr << "bevrpc-launch: " << state_dir.status().message() << "\n";
    return 1;
  }
  std::cout << "state dir: " << *state_dir << std::endl;
  SupervisorOptions options;
  options.state_dir = *state_dir;
  options.drain_delay = flags.drain_delay;
  absl::StatusOr<std::unique_ptr<Supervisor>> supervisor =
      Supervisor::Create(std::move(plan), options);
  if (!supervisor.ok()) {
    std::cerr << "bevrpc-launch: " << supervisor.status().message() << "\n";
    return 1;
  }
  ServerOptions server_options;
  server_options.listen_address = flags.control;
  Server server(server_options);
  ControlService control(supervisor->get());
  builtin::HealthService health(&server);
  absl::Status s = server.RegisterService(&control);
  if (s.ok()) s = builtin::AddReflection(server);
  if (s.ok()) s = health.Register();
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::cerr << "bevrpc-launch: --control=" << flags.control << ": " << s
              << "\n";
    return 2;
  }
  std::string host = flags.control.substr(0, flags.control.rfind(':'));
  std::cout << "control listening on " << host << ":" << server.port()
            << std::endl;
  (*supervisor)->Start();
  int status = Supervise(**supervisor, signals);
  server.Shutdown(absl::Seconds(1));
  return status;
}

int Main(int argc, char** argv) {
  const sigset_t signals = BlockControlSignals();
  absl::StatusOr<LaunchFlags> flags =
      ParseLaunchFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    std::cerr << "bevrpc-launch: " << flags.status().message() << "\n"
              << kLaunchUsage;
    return 2;
  }
  absl::StatusOr<LaunchPlan> plan = LoadTopology(flags->topology, flags->bin_dir);
  if (!plan.ok()) {
    std::cerr << "bevrpc-launch: " << plan.status().message() << "\n";
    return 2;
  }
  if (!flags->emit_systemd.empty()) {
    absl::StatusOr<std::string> dir = MakeStateDir(flags->emit_systemd);
    absl::Status s = EmitSystemdUnits(*plan, *dir);
    if (!s.ok()) {
      std::cerr << "bevrpc-launch: --emit_systemd: " << s.message() << "\n";
      return 2;
    }
    std::cout << "wrote systemd units to " << *dir << std::endl;
    return 0;
  }
  return Run(*flags, *std::move(plan), signals);
}

}  // namespace
}  // namespace bevrpc::launch

int main(int argc, char** argv) { return bevrpc::launch::Main(argc, argv); }
