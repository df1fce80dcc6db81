// Prefork: one master process supervising N worker processes that all
// listen on the same port (SO_REUSEPORT), used by the shared server main's
// --workers=N (services/builtin/server_main.h).
//
//   PreforkOptions options;
//   options.workers = 4;
//   options.name = "echo_server";
//   absl::StatusOr<ReservedPort> port = ReservePort("127.0.0.1", 0);
//   return RunPrefork(options, *port, [&](const WorkerContext& w) {
//     // In the worker, after fork: build the server with reuse_port on
//     // w.port, Start() it, then ReportReady(w); serve until SIGTERM.
//     return RunTheServer(w);
//   });
//
// The master:
// - binds no listening socket. ReservePort() binds (without listen) an
//   SO_REUSEPORT socket to the port and keeps it, so --port=0 picks a port
//   that stays reserved while workers come and go; a bound socket that does
//   not listen gets no connections. Workers bind the same port with
//   SO_REUSEPORT and the kernel spreads new connections over them by
//   4-tuple hash.
// - stays single-threaded (no Server, loop or Channel) so that fork() is
//   safe; each worker builds everything after fork. Signals reach it
//   through a signalfd; it waits in poll().
// - prints "listening on HOST:PORT" (flushed) once every worker reported
//   ready (workers print no such line).
// - restarts a worker that dies, after a backoff that doubles from
//   initial_backoff up to max_backoff on consecutive fast failures (dead
//   before ready, or within stable_after of starting); after
//   max_fast_failures in a row it stops every worker and returns 1. A
//   worker that exits with status 2 (a usage error) before it was ever
//   ready makes the master stop the others and return 2.
// - SIGTERM/SIGINT: sends SIGTERM to every worker (each drains as a single
//   server does), waits up to stop_timeout, SIGKILLs what is left, and
//   returns 0.
// - SIGHUP: a rolling restart, one worker at a time: fork the replacement,
//   wait until it is ready (listening), then SIGTERM the old one and wait
//   for it to exit; then the next. The port always has a listener, so no
//   connect is refused; but connections that sit in the stopping worker's
//   accept queue when it closes its listener are reset unless the kernel
//   migrates them, which needs net.ipv4.tcp_migrate_req=1 (Linux >= 5.14,
//   per network namespace). The master warns at start when it is not set.
//   A SIGHUP during a rolling restart starts another one after it.
//
// Workers get PR_SET_PDEATHSIG(SIGTERM): a master that dies, even by
// SIGKILL, leaves draining workers, never orphans that serve on.
//
// Threading: RunPrefork() must be called from a single-threaded process
// (it checks /proc/self/task and fails otherwise) and does not return
// until the master is done. The other functions are thread-safe.
#ifndef BEVRPC_SERVICES_BUILTIN_PREFORK_H_
#define BEVRPC_SERVICES_BUILTIN_PREFORK_H_

#include <sys/types.h>

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bevrpc::builtin {

// The most workers --workers accepts.
inline constexpr int kMaxWorkers = 1024;

struct PreforkOptions {
  // Worker processes, 1 to kMaxWorkers. Default: 2.
  int workers = 2;
  // Prefix of the master's log lines (stderr), e.g. the binary's name.
  // Default: "prefork".
  std::string name = "prefork";
  // The address printed in the ready line, HOST:PORT (the master reserved
  // the port). Default: "" (the line says "listening on :PORT").
  std::string listen_host;
  // After SIGTERM, how long a worker may take to exit before SIGKILL (the
  // drain grace plus a margin). Default: 10 s.
  absl::Duration stop_timeout = absl::Seconds(10);
  // A worker not ready this long after fork is killed (a fast failure).
  // Default: 30 s.
  absl::Duration ready_timeout = absl::Seconds(30);
  // Restart backoff after consecutive fast failures: initial, doubled each
  // time, capped. Defaults: 100 ms, 5 s.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // A worker that dies sooner than this after starting (or before it was
  // ready) failed fast; one that lived longer resets its slot's count.
  // Default: 10 s.
  absl::Duration stable_after = absl::Seconds(10);
  // Fast failures in a row of one worker slot after which the master gives
  // up: stops every worker and returns 1. Default: 5.
  int max_fast_failures = 5;
};

// The master's reserved port: a bound, non-listening SO_REUSEPORT socket.
struct ReservedPort {
  int fd = -1;
  int port = 0;
};

// Binds an SO_REUSEPORT TCP socket (no listen) to `host` (a numeric IPv4 or
// IPv6 address) and `port` (0: the kernel picks one). The caller owns fd.
// INVALID_ARGUMENT for a host that is not a numeric address; UNAVAILABLE
// if the bind fails (the port is taken by a socket without SO_REUSEPORT or
// by another user).
absl::StatusOr<ReservedPort> ReservePort(absl::string_view host, int port);

// --workers=TEXT as a count: 1 to kMaxWorkers; INVALID_ARGUMENT naming
// --workers otherwise.
absl::StatusOr<int> ParseWorkers(absl::string_view text);

// The backoff before restarting a slot whose worker failed fast
// `fast_failures` times in a row (>= 1): initial_backoff * 2^(n-1), capped
// at max_backoff. A slot whose worker lived long restarts after
// initial_backoff.
absl::Duration RestartBackoff(const PreforkOptions& options,
                              int fast_failures);

// "HOST:PORT", with brackets for an IPv6 host.
std::string JoinHostPort(absl::string_view host, int port);

// What a worker is told, in the child after fork.
struct WorkerContext {
  // 0 .. workers-1: its slot. A replacement keeps the index of the worker
  // it replaces.
  int index = 0;
  pid_t master_pid = 0;
  // The reserved port: listen on it with SO_REUSEPORT.
  int port = 0;
  // Write end of the readiness pipe; ReportReady() writes and closes it.
  int ready_fd = -1;
};

// Tells the master this worker is ready (listening). Call once.
void ReportReady(const WorkerContext& worker);

// A worker's body: builds and runs the server, calls ReportReady() once it
// listens, and returns the process's exit status (0 after a drain).
using WorkerFn = absl::FunctionRef<int(const WorkerContext&)>;

// Runs the master (see the file comment) over `port`, which it owns from
// now on, and returns its exit status: 0 after SIGTERM/SIGINT, 1 when it
// gave up on a failing worker or could not start, 2 when a worker reported
// a usage error.
int RunPrefork(const PreforkOptions& options, ReservedPort port,
               WorkerFn worker);

}  // namespace bevrpc::builtin

#endif  // BEVRPC_SERVICES_BUILTIN_PREFORK_H_
