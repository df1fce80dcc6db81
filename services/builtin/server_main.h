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
// --grace_ms, --reflection, --server_info, --id, --workers; --register=etcd://H:P[,H:P...]/PREFIX,
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
//
// --id=ID is the stable replica identity (e.g. kv/0): with --register it is
// the etcd value's "id", so ring_hash (and its strict shard mode) keeps the
// replica's place, and its keys, across restarts and address changes; it
// is also what ServerInfo reports. --server_info (default true) serves
// bevrpc.server.v1.ServerInfo/Get (services/builtin/server_info.proto):
// pid, prefork worker index, --id, name, listening address, start time.
//
// --http=on|off (default on) serves the built-in HTTP pages (/metrics,
// /health, /options, /connections) on the RPC port, or nowhere;
// --admin_address=HOST:PORT serves them there instead (printed as "admin
// pages on HOST:PORT" just before the "listening on" line).
//
// --workers=N (default 1: one process, as above) runs a prefork master
// (services/builtin/prefork.h) that listens on nothing itself, reserves the
// port, and forks N workers that each serve it with SO_REUSEPORT. The
// master prints the "listening on" line once all N are ready, restarts a
// worker that dies (backoff; gives up and exits 1 after repeated fast
// failures), forwards SIGTERM/SIGINT (each worker drains; exit 0), and on
// SIGHUP replaces the workers one at a time, each replacement listening
// before the old one drains. Set net.ipv4.tcp_migrate_req=1 (Linux >=
// 5.14) so that connections queued at a stopping worker are handed to
// another instead of reset; the master warns when it is not. With
// --register only worker 0 registers, for the whole port: the workers
// share one address and identity, and a key per worker would be revoked
// by the first worker that stops while the others still serve. A
// replacement of worker 0 puts the key with its own lease before the old
// one revokes its lease, so the key stays (unless the old revoke reaches
// etcd first, which leaves it out until the new put lands).
#ifndef BEVRPC_SERVICES_BUILTIN_SERVER_MAIN_H_
#define BEVRPC_SERVICES_BUILTIN_SERVER_MAIN_H_

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rpc/server.h"
#include "services/builtin/health_service.h"

namespace bevrpc::builtin {

// `register_services` adds the binary's services; `health` may be used to
// set per-service statuses there. It runs after the flags are parsed (in
// each worker with --workers), so it may read the binary's own flags: an
// INVALID_ARGUMENT it returns is a usage error (the message is printed and
// the process exits 2, as for a bad flag of ServerMain's own); any other
// error exits 1.
using RegisterFn = absl::FunctionRef<absl::Status(Server&, HealthService&)>;

int ServerMain(int argc, char** argv, absl::string_view name,
               RegisterFn register_services);

}  // namespace bevrpc::builtin

#endif  // BEVRPC_SERVICES_BUILTIN_SERVER_MAIN_H_
