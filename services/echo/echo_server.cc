// echo_server: serves bevrpc.echo.Echo.
//
//   echo_server --port=0 --threads=2
//
// Prints "listening on 127.0.0.1:PORT" once ready, serves in the
// foreground, and on SIGTERM or SIGINT drains gracefully and exits 0. See
// services/builtin/server_main.h for all flags.
#include "services/builtin/server_main.h"
#include "services/echo/echo_service.h"

int main(int argc, char** argv) {
  return bevrpc::builtin::ServerMain(
      argc, argv, "echo_server",
      [](bevrpc::Server& server, bevrpc::builtin::HealthService&) {
        return bevrpc::echo::RegisterEchoService(server);
      });
}
