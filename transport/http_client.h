// HttpClient: a small asynchronous HTTP/1.1 client over libevent's evhttp,
// for talking to HTTP/JSON control planes (etcd's gateway) and to servers'
// pages (/metrics for `bevrpc stats`) from a loop.
//
//   auto client = transport::HttpClient::Create(loop, "127.0.0.1", 2379).value();
//   client->Post("/v3/kv/range", R"({"key":"YQ=="})", {}, absl::Seconds(5),
//                [](absl::StatusOr<transport::HttpResponse> r) { ... });
//   uint64_t id = client->PostStreaming(
//       "/v3/watch", body, {},
//       [](absl::string_view bytes) { /* bytes as they arrive */ },
//       [](absl::Status end) { /* OK after the last chunk */ });
//   client->Cancel(id);
//
// One HttpClient is one evhttp connection to one HOST:PORT: requests run one
// at a time, in order (evhttp has no pipelining), so a long-lived stream
// (an etcd watch) wants a client of its own. The connection is (re)opened
// on demand. Every request carries a `Host` header (evhttp adds none).
//
// Errors: connecting failed or the peer closed before the response ended ->
// UNAVAILABLE; the request's timeout or the connection's idle timeout ->
// DEADLINE_EXCEEDED. A response with any HTTP status is a response
// (HttpResponse::status), except on a stream, whose non-2xx answer ends it
// with an error carrying the status and body (HttpStatusToStatus()).
//
// Threading: Create(), every method and the destructor run on `loop`'s
// thread (or before the loop runs). Callbacks run on that thread, never
// inline from the call that started the request, never after Cancel() of
// that request or after the client is destroyed. Cancelling any request or
// destroying the client from inside one of its callbacks is allowed (the
// evhttp connection is then freed later, from the loop).
#ifndef BEVRPC_TRANSPORT_HTTP_CLIENT_H_
#define BEVRPC_TRANSPORT_HTTP_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transport/event_loop.h"

struct evhttp_connection;

namespace bevrpc::transport {

struct HttpResponse {
  int status = 0;  // HTTP status code, e.g. 200
  std::string body;
};

struct HttpClientOptions {
  // Connect timeout, and the connection's idle read/write timeout (evhttp
  // has one value for all three). A stream disables the read side of it
  // once its response headers have arrived, so a quiet stream lives on.
  // Default: 50 s (evhttp's own default).
  absl::Duration io_timeout = absl::Seconds(50);
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// A non-2xx HTTP status as a Status: the canonical code closest to it (404
// NOT_FOUND, 400 INVALID_ARGUMENT, 408/504 DEADLINE_EXCEEDED, 429
// RESOURCE_EXHAUSTED, 503 UNAVAILABLE, other 5xx INTERNAL, ...) and a
// message naming the status and the body.
absl::Status HttpStatusToStatus(int http_status, absl::string_view body);

// Call only on the loop thread (see the file comment).
class HttpClient {
 public:
  using ResponseCallback =
      absl::AnyInvocable<void(absl::StatusOr<HttpResponse>)>;
  using ChunkCallback = absl::AnyInvocable<void(absl::string_view)>;
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;

  // `host` is an IP address (or a name, resolved blocking by evhttp);
  // `loop` is borrowed and must outlive the client.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(
      EventLoop* loop, absl::string_view host, uint16_t port,
      const HttpClientOptions& options = {});

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  // Cancels every request (no callback runs) and closes the connection.
  ~HttpClient();

  // POSTs `body` to `path` and calls `done` exactly once with the whole
  // response or an error; `timeout` counts from this call (time queued
  // behind other requests included). Returns the request's id for Cancel().
  uint64_t Post(absl::string_view path, absl::string_view body,
                const HttpHeaders& headers, absl::Duration timeout,
                ResponseCallback done);

  // GETs `path` (which may carry a query), like Post() otherwise.
  uint64_t Get(absl::string_view path, const HttpHeaders& headers,
               absl::Duration timeout, ResponseCallback done);

  // POSTs and streams the response body: `on_data` gets the bytes of each
  // HTTP chunk as it arrives (chunks are not messages: callers buffer and
  // split), then `on_done` is called exactly once: OK after the final chunk,
  // or an error. No idle read timeout applies once the headers arrived.
  uint64_t PostStreaming(absl::string_view path, absl::string_view body,
                         const HttpHeaders& headers, ChunkCallback on_data,
                         DoneCallback on_done);

  // Cancels the request: none of its callbacks runs afterwards. Unknown or
  // finished ids are ignored.
  void Cancel(uint64_t id);

  // Requests started and not yet finished or cancelled.
  size_t pending() const { return requests_.size(); }
  const std::string& host_port() const { return host_header_; }

 private:
  struct Request;

  HttpClient(EventLoop* loop, evhttp_connection* conn, std::string host_header,
             absl::Duration io_timeout);
  uint64_t Unary(bool get, absl::string_view path, absl::string_view body,
                 const HttpHeaders& headers, absl::Duration timeout,
                 ResponseCallback done);
  uint64_t Start(std::unique_ptr<Request> request, absl::string_view path,
                 absl::string_view body, const HttpHeaders& headers);
  // Removes the request from the table; it is freed later, on the loop
  // (its callback may be running).
  std::unique_ptr<Request> Take(uint64_t id);
  void Retire(std::unique_ptr<Request> request);
  void Finish(Request* request, absl::Status status);


  EventLoop* loop_;
  evhttp_connection* conn_;
  std::string host_header_;
  absl::Duration io_timeout_;
  // Expires when the client is destroyed: a callback that may have
  // destroyed it checks this before touching it again.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  uint64_t next_id_ = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Request>> requests_;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_HTTP_CLIENT_H_
