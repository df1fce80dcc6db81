// HttpConnection: the HTTP side of one server connection. It parses
// requests from the connection's input (HttpRequestParser), routes them to
// the pages (PageRegistry), writes the responses, and enforces HttpLimits:
// a request must arrive whole within request_timeout of its first byte
// (else 408 and close), an idle keep-alive connection closes after
// idle_timeout, a malformed or oversized request is answered (400, 411,
// 413, 431, 505) and the connection closed. Pipelined requests are served
// one at a time, in order; while the output is over the connection's write
// high watermark (a client that sends without reading) no further request
// is read. HTTP/1.0 and "Connection: close" close after the response.
//
// The owner (the server's session) keeps the transport::Connection and
// forwards its ConnectionHandler callbacks here:
//
//   HttpConnection http(conn, limits, &pages);
//   size_t OnReadable(Buffer& in) override { return http.OnReadable(in); }
//   void OnClosed(...) override { http.OnClosed(); ... }
//
// Threading: call only on the connection's loop thread.
#ifndef BEVRPC_RPC_ADMIN_HTTP_CONNECTION_H_
#define BEVRPC_RPC_ADMIN_HTTP_CONNECTION_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "rpc/admin/http_limits.h"
#include "rpc/admin/http_request_parser.h"
#include "rpc/admin/page_registry.h"
#include "transport/buffer.h"
#include "transport/connection.h"
#include "transport/event_loop.h"

namespace bevrpc::admin {

class HttpConnection {
 public:
  // `conn` and `pages` are borrowed and must outlive this object.
  HttpConnection(transport::Connection* conn, const HttpLimits& limits,
                 const PageRegistry* pages);
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Starts the idle timer (call once, when the connection becomes HTTP,
  // before any OnReadable()).
  void Start();

  // transport::ConnectionHandler's callbacks, forwarded.
  size_t OnReadable(transport::Buffer& input);
  void OnWritabilityChanged(bool writable);
  bool OnReadClosed();
  void OnClosed();

  // Answers 503 with `why` and closes (e.g. over max_connections).
  void Refuse(absl::string_view why);
  // The server is stopping: closes now when no request is under way, else
  // after answering the one under way.
  void Finish();

  bool closing() const { return closing_; }
  uint64_t requests_served() const { return requests_; }

 private:
  // Answers the parsed request; closes when it asked to.
  void Serve();
  void Write(const HttpResponse& response, bool head, bool close);
  void Close();
  void ArmTimers();
  void OnRequestTimeout();

  transport::Connection* conn_;
  const HttpLimits limits_;
  const PageRegistry* pages_;
  HttpRequestParser parser_;
  transport::Timer request_timer_;
  transport::Timer idle_timer_;
  bool closing_ = false;
  bool finishing_ = false;  // Finish() was called.
  bool paused_for_output_ = false;
  uint64_t requests_ = 0;
};

}  // namespace bevrpc::admin

#endif  // BEVRPC_RPC_ADMIN_HTTP_CONNECTION_H_
