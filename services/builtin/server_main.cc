#include "services/builtin/server_main.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "rpc/naming/target.h"
#include "services/builtin/reflection_service.h"

ABSL_FLAG(int, port, 0, "TCP port to listen on; 0 picks a free port");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, threads, 1, "I/O threads (event loops)");
ABSL_FLAG(int, worker_threads, 4,
          "threads for sync unary handlers (ServerOptions::worker_threads)");
ABSL_FLAG(int, max_stream_threads, 256,
          "most sync streaming handlers running at once, each on its own "
          "thread (ServerOptions::max_stream_threads)");
ABSL_FLAG(int, grace_ms, 5000,
          "on SIGTERM/SIGINT, how long open calls may take to finish");
ABSL_FLAG(bool, reflection, true,
          "serve bevrpc.reflection.v1.ServerReflection (the CLI uses it)");
ABSL_FLAG(std::string, register, "",
          "register this server in etcd while it runs: "
          "etcd://HOST:PORT[,HOST:PORT...]/PREFIX (key PREFIX/ADVERTISE, "
          "kept alive with a lease; revoked on SIGTERM/SIGINT before "
          "draining). Empty: no registration");
ABSL_FLAG(absl::Duration, register_ttl, absl::Seconds(10),
          "lease TTL of the --register key: how long it outlives a crash");
ABSL_FLAG(std::string, advertise, "",
          "HOST:PORT to register (--register); default: the listening "
          "address");

namespace bevrpc::builtin {
namespace {

// Many idle connections need many descriptors: use all we may.
void RaiseOpenFilesLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

constexpr absl::string_view kRegisterForms =
    "etcd://HOST:PORT[,HOST:PORT...]/PREFIX";

// Checks --register, --advertise and --register_ttl before anything starts.
absl::Status CheckRegistrationFlags() {
  std::string target = absl::GetFlag(FLAGS_register);
  if (target.empty()) return absl::OkStatus();
  absl::StatusOr<naming::Target> t = naming::ParseTarget(target);
  if (!t.ok() || t->scheme != naming::Target::Scheme::kEtcd) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--register=", target, ": ",
        t.ok() ? "not an etcd target" : t.status().message(),
        "; --register accepts only ", kRegisterForms));
  }
  std::string advertise = absl::GetFlag(FLAGS_advertise);
  if (!advertise.empty()) {
    if (absl::StatusOr<naming::HostPort> hp = naming::ParseHostPort(advertise);
        !hp.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--advertise=", advertise, ": ", hp.status().message(),
                       "; expected HOST:PORT or [V6]:PORT"));
    }
  }
  if (absl::GetFlag(FLAGS_register_ttl) < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--register_ttl=",
        absl::FormatDuration(absl::GetFlag(FLAGS_register_ttl)),
        ": must be at least 1s"));
  }
  return absl::OkStatus();
}

}  // namespace

int ServerMain(int argc, char** argv, absl::string_view name,
               RegisterFn register_services) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "Usage: ", name,
      " [--port=P] [--host=ADDR] [--threads=N] [--grace_ms=MS]"
      " [--reflection=false] [--register=etcd://H:P/PREFIX"
      " [--register_ttl=10s] [--advertise=HOST:PORT]]\n"
      "(--helpfull describes every flag)"));
  absl::ParseCommandLine(argc, argv);
  if (absl::Status s = CheckRegistrationFlags(); !s.ok()) {
    std::cerr << name << ": " << s.message() << "\n";
    return 2;
  }
  RaiseOpenFilesLimit();

  // Block the stop signals in every thread; this one waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ServerOptions options;
  std::string host = absl::GetFlag(FLAGS_host);
  bool v6 = host.find(':') != std::string::npos;
  options.listen_address =
      v6 ? absl::StrCat("[", host, "]:", absl::GetFlag(FLAGS_port))
         : absl::StrCat(host, ":", absl::GetFlag(FLAGS_port));
  options.io_threads = absl::GetFlag(FLAGS_threads);
  options.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  options.max_stream_threads = absl::GetFlag(FLAGS_max_stream_threads);
  // Registered once listening; revoked by Shutdown() before the drain.
  options.register_target = absl::GetFlag(FLAGS_register);
  options.advertise = absl::GetFlag(FLAGS_advertise);
  options.registration.ttl = absl::GetFlag(FLAGS_register_ttl);
  Server server(options);
  HealthService health(&server);
  absl::Status s = register_services(server, health);
  if (s.ok() && absl::GetFlag(FLAGS_reflection)) s = AddReflection(server);
  if (s.ok()) s = health.Register();
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::cerr << name << ": " << s << "\n";
    return 1;
  }
  std::string listening = absl::StrCat(
      v6 ? absl::StrCat("[", host, "]") : host, ":", server.port());
  std::cout << "listening on " << listening << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << name << ": got " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ", draining\n";
  // Deregisters first (--register), so clients stop picking this server
  // before it drains.
  server.Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_grace_ms)));
  return 0;
}

}  // namespace bevrpc::builtin
