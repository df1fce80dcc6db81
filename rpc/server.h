// Server: accepts connections, routes "package.Service/Method" calls to
// registered handlers, and shuts down gracefully.
//
//   ServerOptions options;
//   options.listen_address = "127.0.0.1:0";
//   Server server(options);
//   server.RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
//       "bevrpc.echo.Echo/Echo", &HandleEcho));
//   absl::Status s = server.Start();
//   std::cout << "listening on " << server.port() << "\n";
//   ...
//   server.Shutdown(absl::Seconds(5));   // GOAWAY, drain, close
//
// Built-in HTTP pages (ServerOptions::http): "/" lists them, /metrics,
// /health, /options, /connections; more with AddHttpPage():
//
//   curl http://127.0.0.1:PORT/metrics      # on the RPC port by default
//
// Threading: RegisterMethod() and AddHttpPage() before Start(). Start(), Shutdown() and the
// destructor from one controlling thread, never from a handler or I/O loop.
// port() is thread-safe after Start().
#ifndef BEVRPC_RPC_SERVER_H_
#define BEVRPC_RPC_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rpc/admin/http_page.h"
#include "rpc/method.h"
#include "rpc/server_options.h"
#include "rpc/service.h"
#include "rpc/trace/rpcz_store.h"

namespace bevrpc {

namespace internal {
class ServerImpl;
}  // namespace internal

class Server {
 public:
  explicit Server(ServerOptions options = {});
  ~Server();  // Shutdown(absl::ZeroDuration()) if still running.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Adds a method. Fails on a duplicate or malformed name, or after Start().
  absl::Status RegisterMethod(MethodDesc method);

  // Adds every method of `service`, which is borrowed and must outlive the
  // server. Fails (registering nothing) if any method would fail.
  absl::Status RegisterService(Service* service);

  // Adds an HTTP page at `path` ("/status"), listed on "/" with `title`.
  // `handler` runs on an I/O thread and must be quick and never block.
  // ALREADY_EXISTS for a path already added (the built-in pages included),
  // INVALID_ARGUMENT for a path not starting with "/", FAILED_PRECONDITION
  // after Start().
  absl::Status AddHttpPage(std::string path, std::string title,
                           admin::HttpPageHandler handler);

  // Binds, starts the I/O threads and the worker pool, and serves.
  absl::Status Start();

  // The bound port (after Start()).
  int port() const;

  // With HttpMode::kSeparateAddress, the port and "host:port" the pages
  // are served on (after Start()); otherwise 0 and "". Thread-safe after
  // Start().
  int admin_port() const;
  std::string admin_address() const;

  // Graceful shutdown: stop accepting, send GOAWAY on every connection,
  // refuse new calls with UNAVAILABLE, let open calls finish for up to
  // `grace`, then fail the rest with UNAVAILABLE and close. Blocks until
  // done, which includes every call an async handler still holds: its
  // Completion must be finished or destroyed (the result of a call that
  // ended meanwhile goes nowhere), since that runs on the server's loops.
  // A wait over 5 s is logged. Idempotent.
  void Shutdown(absl::Duration grace);

  // With ServerOptions::tls: re-reads the certificate, key and client CA
  // files; new connections use them, open ones keep theirs. On error the
  // files in use stay and the status names the bad file. FAILED_PRECONDITION
  // without TLS or before Start(). Thread-safe.
  absl::Status ReloadTls();

  // Open connections right now (thread-safe).
  size_t num_connections() const;

  // Memory budget (ServerOptions::max_server_memory_bytes): bytes of
  // requests read and not finished plus unsent output, across every
  // connection, as last reported; and the most ever reported at once.
  // Thread-safe after Start(); 0 before.
  size_t memory_in_use() const;
  size_t peak_memory_in_use() const;

  // Full names of the services with registered methods, sorted. Thread-safe
  // after Start().
  std::vector<std::string> ServiceNames() const;

  // True once Shutdown() has begun (thread-safe).
  bool draining() const;

  // Calls admitted and not yet ended, across the server: what
  // ServerOptions::max_concurrent_calls limits (a call counts until its
  // response is sent or it is cancelled, times out, or its connection
  // closes). Thread-safe; 0 before Start().
  size_t calls_in_flight() const;

  // The server-wide limit on calls in flight right now: with
  // ServerOptions::adaptive_concurrency on, its current value (which moves
  // once per window; it limits unary calls); otherwise
  // max_concurrent_calls (0 = unlimited). Thread-safe; 0 before Start().
  size_t concurrency_limit() const;

  // Recent calls (ServerOptions::rpcz), for the /rpcz page
  // (rpc/trace/rpcz_page.h). Thread-safe; valid for the server's life.
  const trace::RpczStore& rpcz() const;

 private:
  std::unique_ptr<internal::ServerImpl> impl_;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_SERVER_H_
