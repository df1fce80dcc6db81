// ServerOptions: everything configurable about a Server, with defaults.
//
//   ServerOptions options;
//   options.listen_address = "0.0.0.0:8080";
//   options.io_threads = 2;
//   Server server(options);
#ifndef BEVRPC_RPC_SERVER_OPTIONS_H_
#define BEVRPC_RPC_SERVER_OPTIONS_H_

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "rpc/frame_codec.h"
#include "transport/connection.h"
#include "transport/loop_pool.h"
#include "transport/rate_limit.h"

namespace bevrpc {

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
  // Threads for sync (ExecutionMode::kWorkerPool) handlers. Default: 4.
  int worker_threads = 4;
  // Frame size limits. Default: see FrameLimits.
  FrameLimits limits;
  // Connections beyond this are closed at accept. Default: 100000.
  size_t max_connections = 100000;
  // Calls open at once on one connection; more get RESOURCE_EXHAUSTED.
  // Default: 10000.
  size_t max_concurrent_calls_per_connection = 10000;
  // A connection with no calls and no frames for this long is closed (after
  // GOAWAY). Default: infinite (never).
  absl::Duration idle_timeout = absl::InfiniteDuration();
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
  // Byte rates shared by all connections (a rate-limit group). Default:
  // unlimited.
  transport::RateLimit server_rate_limit;
  // Buffering and watermarks of each connection. Default: see
  // ConnectionOptions.
  transport::ConnectionOptions connection;
  // SO_REUSEPORT, for several processes on one port. Default: false.
  bool reuse_port = false;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_SERVER_OPTIONS_H_
