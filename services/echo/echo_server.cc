// echo_server: serves bevrpc.echo.Echo.
//
//   echo_server --port=0 --threads=2
//
// Prints "listening on 127.0.0.1:PORT" once ready (flushed, so a pipe sees
// it at once), serves in the foreground, and on SIGTERM or SIGINT drains
// gracefully (GOAWAY, open calls finish) and exits 0.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "rpc/server.h"
#include "services/builtin/health_service.h"
#include "services/builtin/reflection_service.h"
#include "services/echo/echo_service.h"

ABSL_FLAG(int, port, 0, "TCP port on 127.0.0.1; 0 picks a free port");
ABSL_FLAG(int, threads, 1, "I/O threads (event loops)");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, grace_ms, 5000,
          "on SIGTERM/SIGINT, how long open calls may take to finish");

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

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves bevrpc.echo.Echo.\nUsage: echo_server [--port=P] [--threads=N]");
  absl::ParseCommandLine(argc, argv);
  RaiseOpenFilesLimit();

  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bevrpc::ServerOptions options;
  options.listen_address = absl::StrCat(absl::GetFlag(FLAGS_host), ":",
                                        absl::GetFlag(FLAGS_port));
  options.io_threads = absl::GetFlag(FLAGS_threads);
  bevrpc::Server server(options);
  bevrpc::builtin::HealthService health(&server);
  absl::Status s = bevrpc::echo::RegisterEchoService(server);
  if (s.ok()) s = bevrpc::builtin::AddReflection(server);
  if (s.ok()) s = health.Register();
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::cerr << "echo_server: " << s << "\n";
    return 1;
  }
  std::cout << "listening on " << absl::GetFlag(FLAGS_host) << ":"
            << server.port() << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "echo_server: got " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ", draining\n";
  server.Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_grace_ms)));
  return 0;
}
