// cli_test_server: the echo service plus health and (optionally) reflection,
// for the bevrpc CLI's end-to-end tests.
//
//   cli_test_server --port=0 --reflection=false
//   cli_test_server --not_serving=bevrpc.echo.Echo --server_not_serving
//
// Prints "listening on 127.0.0.1:PORT" once ready (flushed), serves in the
// foreground, and on SIGTERM or SIGINT shuts down gracefully and exits 0.
// --not_serving may be repeated and each value may be a comma-separated list;
// the health service then answers NOT_SERVING for those services.
// --server_not_serving does the same for "" (the server as a whole), which a
// flag value cannot name.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rpc/server.h"
#include "services/builtin/health_service.h"
#include "services/builtin/reflection_service.h"
#include "services/echo/echo_service.h"

ABSL_FLAG(int, port, 0, "TCP port on 127.0.0.1; 0 picks a free port");
ABSL_FLAG(bool, reflection, true,
          "serve bevrpc.reflection.v1.ServerReflection");
ABSL_FLAG(std::vector<std::string>, not_serving, {},
          "services the health service reports NOT_SERVING; repeatable, "
          "comma-separated");
ABSL_FLAG(bool, server_not_serving, false,
          "report the server as a whole (service \"\") NOT_SERVING");

namespace {

constexpr bevrpc::builtin::ServingStatus kNotServing =
    bevrpc::health::v1::HealthCheckResponse::NOT_SERVING;

// Every --not_serving value. absl keeps only the last occurrence of a
// repeated flag, so the occurrences are collected from argv directly.
std::vector<std::string> NotServingServices(int argc, char** argv) {
  std::vector<std::string> services;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    std::string value;
    if (absl::ConsumePrefix(&arg, "--not_serving=") ||
        absl::ConsumePrefix(&arg, "-not_serving=")) {
      value = std::string(arg);
    } else if ((arg == "--not_serving" || arg == "-not_serving") &&
               i + 1 < argc) {
      value = argv[++i];
    } else {
      continue;
    }
    for (absl::string_view s : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      services.emplace_back(s);
    }
  }
  return services;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Echo, health and reflection for CLI tests.\n"
      "Usage: cli_test_server [--port=P] [--reflection=false] "
      "[--not_serving=SVC[,SVC]]... [--server_not_serving]");
  std::vector<std::string> not_serving = NotServingServices(argc, argv);
  absl::ParseCommandLine(argc, argv);

  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bevrpc::ServerOptions options;
  options.listen_address =
      absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port));
  bevrpc::Server server(options);
  bevrpc::builtin::HealthService health(&server);
  absl::Status s = bevrpc::echo::RegisterEchoService(server);
  if (s.ok() && absl::GetFlag(FLAGS_reflection)) {
    s = bevrpc::builtin::AddReflection(server);
  }
  if (s.ok()) s = health.Register();
  for (const std::string& service : not_serving) {
    health.SetStatus(service, kNotServing);
  }
  if (absl::GetFlag(FLAGS_server_not_serving))
    health.SetStatus("", kNotServing);
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::cerr << "cli_test_server: " << s << "\n";
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << server.port() << std::endl;

  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.Shutdown(absl::Seconds(2));
  return 0;
}
