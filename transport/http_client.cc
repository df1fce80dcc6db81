#include "transport/http_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc::transport {

absl::Status HttpStatusToStatus(int http_status, absl::string_view body) {
  std::string message = absl::StrCat("HTTP ", http_status, ": ",
                                     body.substr(0, 512));
  switch (http_status) {
    case 400: return absl::InvalidArgumentError(message);
    case 401: return absl::UnauthenticatedError(message);
    case 403: return absl::PermissionDeniedError(message);
    case 404: return absl::NotFoundError(message);
    case 408:
    case 504: return absl::DeadlineExceededError(message);
    case 409: return absl::AbortedError(message);
    case 429: return absl::ResourceExhaustedError(message);
    case 501: return absl::UnimplementedError(message);
    case 502:
    case 503: return absl::UnavailableError(message);
    default: break;
  }
  if (http_status >= 500) return absl::InternalError(message);
  return absl::UnknownError(message);
}

namespace {

absl::Status EvhttpErrorToStatus(int error, const std::string& peer) {
  switch (error) {
    case EVREQ_HTTP_TIMEOUT:
      return absl::DeadlineExceededError(
          absl::StrCat("HTTP connection to ", peer, " timed out"));
    case EVREQ_HTTP_EOF:
      return absl::UnavailableError(absl::StrCat(
          "HTTP connection to ", peer, " failed or closed before the end"));
    case EVREQ_HTTP_INVALID_HEADER:
    case EVREQ_HTTP_DATA_TOO_LONG:
      return absl::UnavailableError(
          absl::StrCat("bad HTTP response from ", peer));
    case EVREQ_HTTP_BUFFER_ERROR:
      return absl::UnavailableError(
          absl::StrCat("HTTP I/O error talking to ", peer));
    default:
      return absl::CancelledError(
          absl::StrCat("HTTP request to ", peer, " cancelled"));
  }
}

std::string Drain(evhttp_request* req) {
  evbuffer* in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  std::string out(n, '\0');
  if (n > 0) evbuffer_remove(in, out.data(), n);
  return out;
}

}  // namespace

// Per-request state, the `arg` of every evhttp callback of its request.
// Lives in the client's table until the request finishes or is cancelled;
// then it is freed from a posted task, because one of its callbacks may be
// on the stack.
struct HttpClient::Request {
  HttpClient* client = nullptr;
  uint64_t id = 0;
  bool streaming = false;
  bool get = false;  // GET without a body, else POST
  evhttp_request* req = nullptr;  // null once evhttp has freed it
  ResponseCallback on_response;
  ChunkCallback on_data;
  DoneCallback on_done;
  std::unique_ptr<Timer> timer;
  int status = 0;
  bool headers_seen = false;
  std::string body;  // whole body (unary) or a failed stream's body
  absl::Status error = absl::OkStatus();  // from the error callback

  static int OnHeaders(evhttp_request* req, void* arg);
  static void OnChunk(evhttp_request* req, void* arg);
  static void OnError(evhttp_request_error error, void* arg);
  static void OnComplete(evhttp_request* req, void* arg);
};

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(
    EventLoop* loop, absl::string_view host, uint16_t port,
    const HttpClientOptions& options) {
  std::string host_str(host);
  evhttp_connection* conn =
      evhttp_connection_base_new(loop->base(), nullptr, host_str.c_str(), port);
  if (conn == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("evhttp_connection_base_new(", host, ":", port,
                     ") failed"));
  }
  timeval tv = absl::ToTimeval(options.io_timeout);
  evhttp_connection_set_timeout_tv(conn, &tv);
  bool v6 = host_str.find(':') != std::string::npos;
  std::string host_header = v6 ? absl::StrCat("[", host, "]:", port)
                               : absl::StrCat(host, ":", port);
  return std::unique_ptr<HttpClient>(
      new HttpClient(loop, conn, std::move(host_header), options.io_timeout));
}

HttpClient::HttpClient(EventLoop* loop, evhttp_connection* conn,
                       std::string host_header, absl::Duration io_timeout)
    : loop_(loop),
      conn_(conn),
      host_header_(std::move(host_header)),
      io_timeout_(io_timeout) {}

HttpClient::~HttpClient() {
  alive_.reset();
  // Cancel in id order is not needed: each cancel is independent.
  std::vector<uint64_t> ids;
  ids.reserve(requests_.size());
  for (const auto& [id, request] : requests_) ids.push_back(id);
  for (uint64_t id : ids) Cancel(id);
  // The connection may be inside one of its callbacks right now (we may be
  // destroyed from a chunk or completion callback): free it from the loop.
  evhttp_connection* conn = conn_;
  loop_->Post([conn] { evhttp_connection_free(conn); });
}

uint64_t HttpClient::Post(absl::string_view path, absl::string_view body,
                          const HttpHeaders& headers, absl::Duration timeout,
                          ResponseCallback done) {
  return Unary(/*get=*/false, path, body, headers, timeout, std::move(done));
}

uint64_t HttpClient::Get(absl::string_view path, const HttpHeaders& headers,
                         absl::Duration timeout, ResponseCallback done) {
  return Unary(/*get=*/true, path, "", headers, timeout, std::move(done));
}

uint64_t HttpClient::Unary(bool get, absl::string_view path,
                           absl::string_view body, const HttpHeaders& headers,
                           absl::Duration timeout, ResponseCallback done) {
  auto request = std::make_unique<Request>();
  request->get = get;
  request->on_response = std::move(done);
  uint64_t id = Start(std::move(request), path, body, headers);
  auto it = requests_.find(id);
  if (it != requests_.end() && timeout != absl::InfiniteDuration()) {
    Request* r = it->second.get();
    r->timer = std::make_unique<Timer>(loop_);
    r->timer->Start(timeout, [this, id, timeout] {
      std::unique_ptr<Request> taken = Take(id);
      if (taken == nullptr) return;
      if (taken->req != nullptr) evhttp_cancel_request(taken->req);
      taken->req = nullptr;
      ResponseCallback cb = std::move(taken->on_response);
      Retire(std::move(taken));
      cb(absl::DeadlineExceededError(
          absl::StrCat("HTTP request to ", host_header_, " timed out after ",
                       absl::FormatDuration(timeout))));
    });
  }
  return id;
}

uint64_t HttpClient::PostStreaming(absl::string_view path,
                                   absl::string_view body,
                                   const HttpHeaders& headers,
                                   ChunkCallback on_data,
                                   DoneCallback on_done) {
  auto request = std::make_unique<Request>();
  request->streaming = true;
  request->on_data = std::move(on_data);
  request->on_done = std::move(on_done);
  return Start(std::move(request), path, body, headers);
}

uint64_t HttpClient::Start(std::unique_ptr<Request> request,
                           absl::string_view path, absl::string_view body,
                           const HttpHeaders& headers) {
  uint64_t id = next_id_++;
  Request* r = request.get();
  r->client = this;
  r->id = id;
  requests_[id] = std::move(request);

  evhttp_request* req = evhttp_request_new(&Request::OnComplete, r);
  if (req == nullptr) {
    // Report from the loop: callbacks never run inline from the call.
    loop_->Post([this, id] {
      if (auto it = requests_.find(id); it != requests_.end()) {
        Finish(it->second.get(),
               absl::ResourceExhaustedError("evhttp_request_new failed"));
      }
    });
    return id;
  }
  evhttp_request_set_header_cb(req, &Request::OnHeaders);
  evhttp_request_set_error_cb(req, &Request::OnError);
  if (r->streaming) evhttp_request_set_chunked_cb(req, &Request::OnChunk);
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Host", host_header_.c_str());
  if (!r->get) evhttp_add_header(out, "Content-Type", "application/json");
  for (const auto& [name, value] : headers) {
    evhttp_add_header(out, name.c_str(), value.c_str());
  }
  if (!r->get) {
    evbuffer_add(evhttp_request_get_output_buffer(req), body.data(),
                 body.size());
  }
  r->req = req;
  std::string uri(path);
  if (evhttp_make_request(conn_, req, r->get ? EVHTTP_REQ_GET : EVHTTP_REQ_POST,
                          uri.c_str()) != 0) {
    r->req = nullptr;  // freed by evhttp_make_request
    loop_->Post([this, id] {
      if (auto it = requests_.find(id); it != requests_.end()) {
        Finish(it->second.get(),
               absl::UnavailableError(absl::StrCat(
                   "cannot send an HTTP request to ", host_header_)));
      }
    });
  }
  return id;
}

void HttpClient::Cancel(uint64_t id) {
  std::unique_ptr<Request> taken = Take(id);
  if (taken == nullptr) return;
  evhttp_request* req = taken->req;
  taken->req = nullptr;
  // Runs the error callback (REQUEST_CANCEL) synchronously; it sees the
  // request no longer in the table and does nothing.
  if (req != nullptr) evhttp_cancel_request(req);
  Retire(std::move(taken));
}

std::unique_ptr<HttpClient::Request> HttpClient::Take(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return nullptr;
  std::unique_ptr<Request> r = std::move(it->second);
  requests_.erase(it);
  if (r->timer != nullptr) r->timer->Cancel();
  return r;
}

void HttpClient::Retire(std::unique_ptr<Request> request) {
  request->client = nullptr;
  loop_->Post([r = std::move(request)] {});
}

// Ends `r` with `status` (streams) or its response / `status` (unary) and
// runs its final callback. `r` must be in the table.
void HttpClient::Finish(Request* r, absl::Status status) {
  std::unique_ptr<Request> taken = Take(r->id);
  if (taken->streaming) {
    DoneCallback cb = std::move(taken->on_done);
    Retire(std::move(taken));
    cb(std::move(status));
    return;
  }
  ResponseCallback cb = std::move(taken->on_response);
  HttpResponse response{taken->status, std::move(taken->body)};
  Retire(std::move(taken));
  if (status.ok()) {
    cb(std::move(response));
  } else {
    cb(std::move(status));
  }
}

int HttpClient::Request::OnHeaders(evhttp_request* req, void* arg) {
  auto* r = static_cast<Request*>(arg);
  if (r->client == nullptr) return 0;
  r->headers_seen = true;
  r->status = evhttp_request_get_response_code(req);
  if (r->streaming) {
    // evhttp applies its idle read timeout only on connect; from here on a
    // quiet stream (an etcd watch without events) must not time out. The
    // write side keeps its timeout.
    evhttp_connection* conn = evhttp_request_get_connection(req);
    bufferevent* bev = evhttp_connection_get_bufferevent(conn);
    timeval write_timeout = absl::ToTimeval(r->client->io_timeout_);
    bufferevent_set_timeouts(bev, nullptr, &write_timeout);
  }
  return 0;
}

void HttpClient::Request::OnChunk(evhttp_request* req, void* arg) {
  auto* r = static_cast<Request*>(arg);
  if (r->client == nullptr) return;
  std::string data = Drain(req);
  if (r->status < 200 || r->status > 299) {
    r->body += data;  // a stream's error answer: reported at the end
    return;
  }
  if (data.empty()) return;
  // May cancel this request or destroy the client: touch nothing after.
  r->on_data(data);
}

void HttpClient::Request::OnError(evhttp_request_error error, void* arg) {
  auto* r = static_cast<Request*>(arg);
  if (r->client == nullptr) return;  // cancelled: Cancel() owns the end
  r->error = EvhttpErrorToStatus(error, r->client->host_header_);
  // evhttp frees the request after this; the completion callback (with a
  // null request) follows and reports.
  r->req = nullptr;
}

void HttpClient::Request::OnComplete(evhttp_request* req, void* arg) {
  auto* r = static_cast<Request*>(arg);
  HttpClient* client = r->client;
  if (client == nullptr) return;
  r->req = nullptr;  // evhttp frees it when we return
  absl::Status status = r->error;
  if (req == nullptr || evhttp_request_get_response_code(req) == 0) {
    if (status.ok()) {
      status = absl::UnavailableError(absl::StrCat(
          "cannot connect to ", client->host_header_, " over HTTP"));
    }
    client->Finish(r, std::move(status));
    return;
  }
  r->status = evhttp_request_get_response_code(req);
  std::string rest = Drain(req);
  if (!r->streaming) {
    r->body += rest;
    client->Finish(r, absl::OkStatus());
    return;
  }
  if (r->status < 200 || r->status > 299) {
    r->body += rest;
    client->Finish(r, HttpStatusToStatus(r->status, r->body));
    return;
  }
  if (!rest.empty()) {
    // A stream answered with Content-Length: the whole body at once.
    uint64_t id = r->id;
    std::weak_ptr<int> alive = client->alive_;
    r->on_data(rest);
    // The callback may have cancelled the request or destroyed the client.
    if (alive.expired() || !client->requests_.contains(id)) return;
  }
  client->Finish(r, absl::OkStatus());
}

}  // namespace bevrpc::transport
