// HttpLimits: the bounds on the HTTP side of a server (the built-in pages),
// so that a huge, slow or numerous HTTP client costs a bounded amount of
// memory and time. Part of ServerOptions (ServerOptions::http_limits).
//
//   ServerOptions options;
//   options.http_limits.request_timeout = absl::Seconds(2);
//
// Plain struct.
#ifndef BEVRPC_RPC_ADMIN_HTTP_LIMITS_H_
#define BEVRPC_RPC_ADMIN_HTTP_LIMITS_H_

#include <cstddef>

#include "absl/time/time.h"

namespace bevrpc::admin {

struct HttpLimits {
  // Bytes of the request line plus headers (with their line ends and the
  // empty line). A request over it is answered 431 and the connection
  // closed. Default: 16 KiB.
  size_t max_head_bytes = 16 * 1024;
  // Header lines per request; more is answered 431 and closed.
  // Default: 100.
  size_t max_headers = 100;
  // Bytes of a request body (Content-Length); more is answered 413 and
  // closed before the body is read. Default: 1 MiB.
  size_t max_body_bytes = 1024 * 1024;
  // A request must arrive whole within this of its first byte, or it is
  // answered 408 and the connection closed (a slow client, e.g. slow-loris,
  // holds a connection for at most this long per request). Default: 10 s.
  absl::Duration request_timeout = absl::Seconds(10);
  // A keep-alive connection with no request under way for this long is
  // closed. Default: 60 s.
  absl::Duration idle_timeout = absl::Seconds(60);
  // HTTP connections open at once per server (on every address it serves
  // pages on); one more is answered 503 and closed. Default: 256.
  size_t max_connections = 256;
};

}  // namespace bevrpc::admin

#endif  // BEVRPC_RPC_ADMIN_HTTP_LIMITS_H_
