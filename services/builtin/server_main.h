// The main() of a standalone bevrpc server binary, shared by echo_server,
// kv_server and test servers: flags, reflection and health, the
// "listening on" line, and a graceful drain on SIGTERM/SIGINT.
//
//   int main(int argc, char** argv) {
//     MyService service;
//     return bevrpc::builtin::ServerMain(
//         argc, argv, "my_server",
//         [&](bevrpc::Server& server, bevrpc::builtin::HealthService&) {
//           return server.RegisterService(&service);
//         });
//   }
//
// Flags: --port (0 = a free port), --host, --threads (I/O threads),
// --grace_ms, --reflection; --register=etcd://H:P[,H:P...]/PREFIX,
// --register_ttl (default 10s) and --advertise (default: the listening
// address) register the server in etcd under PREFIX/ADVERTISE with a lease
// (rpc/naming/registrar.h). --max_concurrent_calls=N limits calls in flight
// (=auto: an adaptive limit, ServerOptions::adaptive_concurrency);
// --fault_abort=METHOD_OR_*:PERCENT:CODE[,...] and
// --fault_delay=METHOD_OR_*:PERCENT:DURATION[,...] inject faults
// (docs/resilience.md). Prints "listening on HOST:PORT" (flushed) when
// ready; raises its open-files limit to the hard limit; on SIGTERM or SIGINT
// revokes the registration (so clients stop picking it at once), then
// drains and returns 0. A bad flag exits with status 2 and a message naming
// the flag. Call once, from main().
#ifndef BEVRPC_SERVICES_BUILTIN_SERVER_MAIN_H_
#define BEVRPC_SERVICES_BUILTIN_SERVER_MAIN_H_

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rpc/server.h"
#include "services/builtin/health_service.h"

namespace bevrpc::builtin {

// `register_services` adds the binary's services; `health` may be used to
// set per-service statuses there.
using RegisterFn = absl::FunctionRef<absl::Status(Server&, HealthService&)>;

int ServerMain(int argc, char** argv, absl::string_view name,
               RegisterFn register_services);

}  // namespace bevrpc::builtin

#endif  // BEVRPC_SERVICES_BUILTIN_SERVER_MAIN_H_
