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

}  // namespace

int ServerMain(int argc, char** argv, absl::string_view name,
               RegisterFn register_services) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "Usage: ", name,
      " [--port=P] [--host=ADDR] [--threads=N] [--grace_ms=MS]"
      " [--reflection=false]\n(--helpfull describes every flag)"));
  absl::ParseCommandLine(argc, argv);
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
  std::cout << "listening on " << (v6 ? absl::StrCat("[", host, "]") : host)
            << ":" << server.port() << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << name << ": got " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ", draining\n";
  server.Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_grace_ms)));
  return 0;
}

}  // namespace bevrpc::builtin
