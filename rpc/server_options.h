// ServerOptions: everything configurable about a Server, with defaults.
//
//   ServerOptions options;
//   options.listen_address = "0.0.0.0:8080";
//   options.io_threads = 2;
//   Server server(options);
#ifndef BEVRPC_RPC_SERVER_OPTIONS_H_
#define BEVRPC_RPC_SERVER_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "rpc/admin/http_limits.h"
#include "rpc/fault_injection.h"
#include "rpc/frame_codec.h"
#include "rpc/interceptor.h"
#include "transport/connection.h"
#include "transport/loop_pool.h"
#include "rpc/metrics/metrics.h"
#include "rpc/naming/registrar.h"
#include "rpc/trace/rpcz_store.h"
#include "transport/rate_limit.h"
#include "transport/tls.h"

namespace bevrpc {

// The adaptive server-wide concurrency limit (docs/resilience.md,
// "Adaptive concurrency limit"), after brpc's auto limiter: instead of a
// number chosen by hand, the limit on unary calls in flight follows Little's
// law from what the server measures,
//
//   limit = peak_qps x no_load_latency x (1 + alpha)
//
// recomputed at the end of each window from the calls that ended in it.
// no_load_latency is the lowest window-average latency seen; every
// remeasure_interval or so the limit is lowered for a moment so that queues
// drain and it is measured afresh. Streaming calls are not limited by it (a
// stream's lifetime is not a service time); max_concurrent_calls and
// max_concurrent_calls_per_method still apply on top.
//
//   options.adaptive_concurrency.enabled = true;
//   options.adaptive_concurrency.max_limit = 2000;
struct AdaptiveConcurrency {
  // Turns the adaptive limit on. Off, nothing is measured. Default: false.
  bool enabled = false;
  // How often the limit is recomputed: each window's latency and throughput
  // give one estimate. Shorter follows changes sooner and is noisier.
  // Default: 1 s.
  absl::Duration window = absl::Seconds(1);
  // A window in which fewer calls ended is discarded (too few to average);
  // the limit then stays as it is, e.g. while the server is idle.
  // Default: 100.
  int min_calls_per_window = 100;
  // Headroom above the estimated capacity: a small queue that keeps the
  // handlers busy and lets the limit grow when the server could do more
  // (with the limit full and latency at its no-load value, each window
  // raises the limit by this share). Must be in (0, 10]. Default: 0.3.
  double alpha = 0.3;
  // The limit until the first window has been measured. Default: 40.
  int initial_limit = 40;
  // The floor: the limit never goes below it. At least 1. Default: 4.
  int min_limit = 4;
  // The ceiling: the limit never goes above it. 0 = none. Default: 0.
  int max_limit = 0;
  // About how often no_load_latency is re-measured (at a random time
  // between half this and this, so that replicas do not all dip together):
  // the limit is halved for twice the current latency plus one window,
  // whose average latency becomes the new no_load_latency. Infinite:
  // never. Default: 30 s.
  absl::Duration remeasure_interval = absl::Seconds(30);
};

// Where a server serves its built-in HTTP pages (/metrics, /health,
// /options, /connections, ...; docs/observability.md).
enum class HttpMode {
  // On the RPC port: a connection whose first bytes are an HTTP method
  // ("GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ") is HTTP for
  // its whole life; bevrpc frames start with "BEVR", which none of them
  // does.
  kSamePort,
  // On ServerOptions::admin_address only; the RPC port treats HTTP as any
  // other bad magic.
  kSeparateAddress,
  // Nowhere (a public-facing port): HTTP gets the bad-magic answer.
  kOff,
};

struct ServerOptions {
  // "host:port" or "[v6]:port"; port 0 picks a free port. Default:
  // "127.0.0.1:0".
  std::string listen_address = "127.0.0.1:0";
  // I/O threads, each with its own event loop. Default: 1.
  int io_threads = 1;
  // Run on these loops instead of starting `io_threads` threads (embedding:
  // e.g. a LoopPool::Borrow() of the application's own event loops).
  // Borrowed; must outlive the server; Shutdown() must then be called from
  // a thread that is not one of them. Default: null.
  transport::LoopPool* loops = nullptr;
  // Threads for sync (ExecutionMode::kWorkerPool) unary handlers and
  // RunOnWorkerPool() work. Default: 4.
  int worker_threads = 4;
  // Sync streaming handlers hold a thread for a stream's whole life, so
  // they never run on the worker_threads: each gets a thread of its own
  // from an elastic pool (started on demand, kept 10 s when idle), at most
  // this many at once. A sync stream that finds them all busy fails at
  // once with RESOURCE_EXHAUSTED. Idle open streams therefore cannot
  // starve unary calls, at the cost of a thread (and its stack, mostly
  // untouched) per open sync stream; callback streaming handlers take no
  // thread at all. Default: 256.
  int max_stream_threads = 256;
  // Sync handlers (and RunOnWorkerPool() work) waiting for a worker. A call
  // that finds the queue full fails at once with RESOURCE_EXHAUSTED (an
  // overload answer a client may retry elsewhere) instead of waiting
  // without bound. 0 = unbounded. Default: 10000.
  size_t max_queued_calls = 10000;
  // Memory budget of one connection: bytes of requests read and not yet
  // finished (unary payloads until the call ends, stream messages until
  // the handler reads them) plus bytes of unsent output. Above it the
  // connection stops reading (the client's writes back up into its own
  // admission budget) until calls finish or output drains; nothing is lost
  // and reading always resumes. A single message larger than the budget
  // is still read, alone. 0 = unlimited. Default: 32 MiB.
  size_t max_connection_memory_bytes = 32 * 1024 * 1024;
  // The same budget shared by every connection of the server: a
  // connection also stops reading while the server as a whole is above
  // it. 0 = unlimited. Default: 128 MiB.
  size_t max_server_memory_bytes = 128 * 1024 * 1024;
  // Frame size limits. Default: see FrameLimits.
  FrameLimits limits;
  // Connections beyond this are closed at accept. Default: 100000.
  size_t max_connections = 100000;
  // Calls open at once on one connection; more get RESOURCE_EXHAUSTED. A
  // call the client cancelled (or whose deadline passed) still counts until
  // its handler has finished with it, so a client that opens and cancels
  // calls quickly never has more handlers running than this. Default:
  // 10000.
  size_t max_concurrent_calls_per_connection = 10000;
  // Overload protection (docs/resilience.md, "Overload"): calls in flight
  // at once across the whole server, unary and streaming alike. A call is
  // in flight from the moment it is admitted (its REQUEST read, its method
  // known) until it ends: its response is sent, or it is cancelled, times
  // out, its connection is reset or fails, or the server shuts down (a
  // client that only shuts down its sending side still gets its answers,
  // so its calls stay in flight until answered). (A handler that
  // goes on running after its call was cancelled no longer counts here;
  // max_concurrent_calls_per_connection still counts it.) A call that would
  // exceed the limit is answered at once, before any handler or queue sees
  // it, with RESOURCE_EXHAUSTED naming the limit and the trailer
  // bevrpc-retry-pushback-ms (overload_retry_pushback), so that a client
  // with other replicas goes elsewhere. 0 = unlimited. Default: 0: the
  // right number depends on the handlers (a cache lookup and a 2 s report
  // differ by orders of magnitude), and the queues behind the handlers are
  // already bounded (max_queued_calls, max_stream_threads, the memory
  // budgets).
  int max_concurrent_calls = 0;
  // The same limit for single methods, by "package.Service/Method", on top
  // of max_concurrent_calls (a call must fit both). Start() fails with
  // INVALID_ARGUMENT for a method that is not registered or a limit < 1.
  // Default: none.
  std::map<std::string, int> max_concurrent_calls_per_method;
  // A server-wide limit on unary calls in flight that adapts to measured
  // latency and throughput (see AdaptiveConcurrency), instead of or under
  // max_concurrent_calls. Refusals are answered like max_concurrent_calls'.
  // Default: off.
  AdaptiveConcurrency adaptive_concurrency;
  // What a refused call's bevrpc-retry-pushback-ms trailer tells the
  // client: retry on another endpoint after this long (0: at once). A
  // negative duration sends -1: do not retry this call. Default: 0.
  absl::Duration overload_retry_pushback = absl::ZeroDuration();
  // Faults injected on purpose (rpc/fault_injection.h). Default: none.
  FaultInjection fault_injection;
  // Cancel-storm ("rapid reset") defence, docs/protocol.md "Cancel
  // storms": a call the client cancels (CANCEL) sooner than this after its
  // REQUEST arrived, and before half its deadline budget has passed, is an
  // early cancel. Calls cancelled later (a long stream the user closes, the
  // client's deadline timer) never count. Default: 1 s (Envoy's
  // premature-reset lifetime).
  absl::Duration early_cancel_time = absl::Seconds(1);
  // Cancel-storm defence: the early cancels a connection may make per
  // second, on average. They draw on a token bucket of early_cancel_burst
  // tokens refilled at this rate, and each call answered with its handler's
  // result puts a token back; the early cancel that finds the bucket empty
  // gets GOAWAY RESOURCE_EXHAUSTED "too many cancelled calls ..." and the
  // connection is closed. Far above what hedging or a user's cancels
  // produce, far below a flood (a loop of REQUEST + CANCEL runs at hundreds
  // of thousands per second). 0 turns the budget off (the concurrency
  // limit still holds). Default: 1000.
  uint32_t max_early_cancels_per_second = 1000;
  // Cancel-storm defence: the size of the bucket, i.e. the early cancels a
  // connection may make at once. As large as the default
  // max_concurrent_calls_per_connection, so a client may cancel every call
  // it can have open in one go. Default: 10000.
  uint32_t early_cancel_burst = 10000;
  // A connection with no calls and no frames other than PING and PONG for
  // this long is closed (after GOAWAY). Default: infinite (never).
  absl::Duration idle_timeout = absl::InfiniteDuration();
  // Keepalive: a connection from which nothing has been read for this long
  // gets a PING, so that peers gone without a FIN or RST (a crashed host, a
  // dropped NAT or firewall entry) are found and their calls cancelled.
  // gRPC's server default: one small frame per idle connection every two
  // hours costs nothing, and dead connections are still reclaimed. Infinite
  // turns server pings off. Default: 2 h.
  absl::Duration keepalive_time = absl::Hours(2);
  // Keepalive: after a PING, a connection from which nothing at all (the
  // PONG, any other frame, or part of one) is read within this long is
  // closed without GOAWAY; its calls are cancelled as when the client
  // disconnects. Default: 20 s.
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Ping-flood defence: a client PING that arrives sooner than this after
  // the client's previous PING, with no RESPONSE, MESSAGE or HEADERS sent by
  // the server in between, is a strike. A bevrpc client pings at most once
  // per its keepalive_time, so this must not exceed the smallest
  // keepalive_time of the clients. Not gRPC's 5 min, which punishes any
  // client keepalive_time below it: 10 s is the floor gRPC's Go client
  // enforces for its keepalive time, and still cuts a flood after a few
  // frames. Default: 10 s.
  absl::Duration min_ping_interval = absl::Seconds(10);
  // Ping-flood defence: a connection with more strikes than this gets
  // GOAWAY RESOURCE_EXHAUSTED "too many pings" and is closed. Sending a
  // RESPONSE, MESSAGE or HEADERS resets the count. Default: 2 (gRPC's).
  int max_ping_strikes = 2;
  // A frame that has started must complete within this, or the connection
  // is closed. Default: 30 s.
  absl::Duration frame_timeout = absl::Seconds(30);
  // Streaming calls: the receive window per call, in bytes of client
  // messages buffered before the client must wait for credit (at least
  // 64 KiB, the protocol's initial window). Default: 64 KiB.
  uint32_t stream_window_bytes = 64 * 1024;
  // Streaming calls: bytes of written but unsent messages (waiting for the
  // client's credit or the connection) a call may queue before Write()
  // returns false. Default: 64 KiB.
  size_t stream_write_buffer_bytes = 64 * 1024;
  // Per-connection byte rates (a token bucket each). Default: unlimited.
  transport::RateLimit per_connection_rate_limit;
  // Byte rates shared by all connections (a rate-limit group). A
  // connection moved into another group (per-tenant byte rates,
  // ServerContext::SetConnectionRateLimitGroup()) leaves this one: groups
  // do not nest. Default: unlimited.
  transport::RateLimit server_rate_limit;
  // Buffering and watermarks of each connection. Default: see
  // ConnectionOptions.
  transport::ConnectionOptions connection;
  // SO_REUSEPORT, for several processes on one port. Default: false.
  bool reuse_port = false;
  // Registration in an etcd registry, so that etcd:// targets find this
  // server (docs/naming.md, "Registration"): "etcd://H:P[,H:P...]/PREFIX".
  // Start() registers once it listens (a bad target fails Start()); the
  // lease is kept alive, and re-granted when lost, in the background, and
  // revoked first thing in Shutdown(), before the drain, so clients stop
  // picking the server at once. Empty: no registration. Default: empty.
  std::string register_target;
  // The HOST:PORT registered. Empty: the listening address, whose port 0
  // is the port chosen (a wildcard host such as 0.0.0.0 cannot be
  // registered: Start() fails, asking for this). Default: empty.
  std::string advertise;
  // Lease TTL (default 10 s), metadata (weight, zone, id, version) and
  // retry timing of the registration.
  naming::RegistrarOptions registration;
  // Where the server's metrics go (rpc/internal/server_metrics.h: per
  // method bevrpc_server_started, _handled{code}, _in_flight,
  // _handling_seconds, bytes and stream messages; server-wide connections,
  // queue, memory budget, workers, rate limits; process metrics). Borrowed:
  // must outlive the server. Default: MetricsRegistry::Default().
  metrics::MetricsRegistry* metrics_registry =
      &metrics::MetricsRegistry::Default();
  // Records those metrics. Off, calls record nothing at all. Default: true.
  bool enable_metrics = true;
  // Where the built-in HTTP pages are served (see HttpMode). Default:
  // kSamePort.
  HttpMode http = HttpMode::kSamePort;
  // With kSeparateAddress: "host:port" to serve the pages on; port 0 picks
  // a free port (Server::admin_address() tells which). Start() fails with
  // INVALID_ARGUMENT when it is empty or does not parse. Default: empty.
  std::string admin_address;
  // Bounds on HTTP requests and connections. Default: see HttpLimits.
  admin::HttpLimits http_limits;
  // TLS (docs/security.md): a certificate and key, and with client_ca_file
  // mutual TLS (client certificates required and verified; handlers read
  // them with ServerContext::peer_identity()). Each accepted connection's
  // first byte is peeked (within frame_timeout): a TLS handshake is
  // served over TLS, HTTP pages included; a plaintext client is refused
  // ("server requires TLS"). Server::ReloadTls() re-reads the files.
  // Applies to listen_address, not admin_address. Default: empty cert
  // (plaintext).
  transport::TlsServerOptions tls;
  // Recent calls kept for /rpcz (Server::rpcz(), rpc/trace/rpcz_store.h):
  // sampling (one call in 1024, plus every failed or slow call), how many
  // are kept (1024) and how many downstream calls each lists (32).
  // Default: on, as described there.
  trace::RpczOptions rpcz;
  // Run around every call, in order, before the handler; a refusal fails
  // the call with its status (rpc/interceptor.h; docs/security.md,
  // "Interceptors"). Built-ins: rpc/auth/ (bearer tokens, certificate
  // allow-lists) and rpc/tenant/ (per-tenant limits). Default: none.
  ServerInterceptors interceptors;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_SERVER_OPTIONS_H_
