#include "transport/connection.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transport/rate_limit.h"
#include "transport/tls.h"

namespace bevrpc::transport {
namespace {

int BevOptions(const ConnectionOptions& options) {
  int flags = BEV_OPT_THREADSAFE | BEV_OPT_CLOSE_ON_FREE;
  if (options.defer_callbacks) flags |= BEV_OPT_DEFER_CALLBACKS;
  return flags;
}

void SetNoDelay(int fd) {
  int one = 1;
  // Fails harmlessly on non-TCP sockets (socketpairs in tests).
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string SocketError(int fd) {
  int err = EVUTIL_SOCKET_ERROR();
  if (fd >= 0) {
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 &&
        so_error != 0) {
      err = so_error;
    }
  }
  return evutil_socket_error_to_string(err);
}

}  // namespace

Connection::Connection(EventLoop* loop, bufferevent* bev,
                       const ConnectionOptions& opts)
    : loop_(loop),
      bev_(bev),
      options_(opts),
      linger_timer_(loop),
      connect_timer_(loop) {
  options_.write_low_watermark =
      std::min(options_.write_low_watermark, options_.write_high_watermark);
}

void Connection::Setup() {
  kick_.reset(event_new(loop_->base(), -1, 0, &Connection::OnKick, this));
  private_in_ = evbuffer_new();
  pending_out_ = evbuffer_new();
  bufferevent_set_max_single_write(
      bev_, static_cast<ev_ssize_t>(options_.max_write_per_turn));
  bufferevent_setcb(bev_, &Connection::OnRead, &Connection::OnWrite,
                    &Connection::OnEvent, this);
  bufferevent_setwatermark(bev_, EV_WRITE, options_.write_low_watermark, 0);
}

std::unique_ptr<Connection> Connection::Wrap(EventLoop* loop, bufferevent* bev,
                                             const ConnectionOptions& options,
                                             TlsRole tls, int adopted_fd) {
  std::unique_ptr<Connection> conn(new Connection(loop, bev, options));
  conn->tls_ = tls;
  conn->Setup();
  if (adopted_fd >= 0) {
    absl::StatusOr<SocketAddress> peer = SocketAddress::FromPeerName(adopted_fd);
    conn->peer_ = peer.ok() ? peer->ToString() : "unknown";
  }
  return conn;
}

absl::Status Connection::BeginConnect(
    const SocketAddress& address, absl::Duration timeout,
    absl::AnyInvocable<void(absl::Status)> on_connected) {
  peer_ = address.ToString();
  on_connected_ = std::move(on_connected);
  connecting_ = true;
  if (bufferevent_socket_connect(bev_, const_cast<sockaddr*>(address.sa()),
                                 static_cast<int>(address.length)) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "connect to ", peer_, ": ", SocketError(bufferevent_getfd(bev_))));
  }
  StartConnectTimer(timeout, "connect to");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Adopt(
    EventLoop* loop, int fd, const ConnectionOptions& options) {
  evutil_make_socket_nonblocking(fd);
  SetNoDelay(fd);
  bufferevent* bev = bufferevent_socket_new(loop->base(), fd, BevOptions(options));
  if (bev == nullptr) {
    evutil_closesocket(fd);
    return absl::ResourceExhaustedError("bufferevent_socket_new failed");
  }
  std::unique_ptr<Connection> conn = Wrap(loop, bev, options, TlsRole::kNone, fd);
  if (options.direct_read) conn->UseDirectRead();
  return conn;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Connect(
    EventLoop* loop, const SocketAddress& address,
    const ConnectionOptions& options, absl::Duration timeout,
    absl::AnyInvocable<void(absl::Status)> on_connected) {
  bufferevent* bev = bufferevent_socket_new(loop->base(), -1, BevOptions(options));
  if (bev == nullptr) {
    return absl::ResourceExhaustedError("bufferevent_socket_new failed");
  }
  std::unique_ptr<Connection> conn = Wrap(loop, bev, options, TlsRole::kNone, -1);
  absl::Status s = conn->BeginConnect(address, timeout, std::move(on_connected));
  if (!s.ok()) return s;
  return conn;
}

void Connection::StartConnectTimer(absl::Duration timeout,
                                   absl::string_view what) {
  connect_timer_.Start(timeout, [this, timeout, what] {
    if (!on_connected_) return;
    absl::Status s = absl::DeadlineExceededError(
        absl::StrCat(what, " ", peer_, " timed out after ",
                     absl::FormatDuration(timeout)));
    auto cb = std::move(on_connected_);
    FinishClose(s);
    cb(s);
  });
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::AdoptTls(
    EventLoop* loop, int fd, const ConnectionOptions& options,
    const TlsContext& tls, absl::Duration handshake_timeout,
    absl::AnyInvocable<void(absl::Status)> on_handshake) {
  absl::StatusOr<SSL*> ssl = tls.NewSsl("");
  if (!ssl.ok()) {
    evutil_closesocket(fd);
    return ssl.status();
  }
  evutil_make_socket_nonblocking(fd);
  SetNoDelay(fd);
  // Frees the SSL if it fails; with CLOSE_ON_FREE it owns SSL and fd after.
  bufferevent* bev = bufferevent_openssl_socket_new(
      loop->base(), fd, *ssl, BUFFEREVENT_SSL_ACCEPTING, BevOptions(options));
  if (bev == nullptr) {
    evutil_closesocket(fd);
    return absl::ResourceExhaustedError("bufferevent_openssl_socket_new failed");
  }
  bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  std::unique_ptr<Connection> conn = Wrap(loop, bev, options, TlsRole::kServer, fd);
  // Until the handshake is done, libevent drives the socket itself.
  conn->connecting_ = true;
  conn->on_connected_ = std::move(on_handshake);
  conn->StartConnectTimer(handshake_timeout, "TLS handshake with");
  return conn;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::ConnectTls(
    EventLoop* loop, const SocketAddress& address,
    const ConnectionOptions& options, absl::Duration timeout,
    const TlsContext& tls, absl::string_view host,
    absl::AnyInvocable<void(absl::Status)> on_connected) {
  absl::StatusOr<SSL*> ssl = tls.NewSsl(host);
  if (!ssl.ok()) return ssl.status();
  bufferevent* bev = bufferevent_openssl_socket_new(
      loop->base(), -1, *ssl, BUFFEREVENT_SSL_CONNECTING, BevOptions(options));
  if (bev == nullptr) {
    return absl::ResourceExhaustedError("bufferevent_openssl_socket_new failed");
  }
  bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
  std::unique_ptr<Connection> conn = Wrap(loop, bev, options, TlsRole::kClient, -1);
  absl::Status s = conn->BeginConnect(address, timeout, std::move(on_connected));
  if (!s.ok()) return s;
  return conn;
}

absl::Status Connection::TlsFailure(short what) {
  unsigned long errors[4] = {0, 0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    errors[i] = bufferevent_get_openssl_error(bev_);
    if (errors[i] == 0) break;
  }
  SSL* ssl = bufferevent_openssl_get_ssl(bev_);
  const bool handshake_done = !connecting_;
  if (handshake_done && errors[0] == 0 && (what & BEV_EVENT_EOF) &&
      (ssl == nullptr || SSL_get_verify_result(ssl) == X509_V_OK)) {
    // A plain socket event (EOF, reset) after the handshake.
    return absl::UnavailableError(
        (what & BEV_EVENT_EOF)
            ? absl::StrCat("connection to ", peer_, " closed by peer")
            : absl::StrCat("connection to ", peer_, " failed: ",
                           SocketError(bufferevent_getfd(bev_))));
  }
  std::string cause = internal::DescribeTlsFailure(
      ssl, errors, tls_ == TlsRole::kServer, handshake_done);
  if (errors[0] == 0 && !(what & BEV_EVENT_EOF) && !handshake_done &&
      cause == "connection closed during the handshake") {
    cause = absl::StrCat("socket error: ", SocketError(bufferevent_getfd(bev_)));
  }
  if (handshake_done) {
    return absl::UnavailableError(
        absl::StrCat("connection to ", peer_, " failed: TLS error: ", cause));
  }
  return absl::UnavailableError(
      absl::StrCat("TLS handshake with ", peer_, " failed: ", cause));
}

absl::StatusOr<
    std::pair<std::unique_ptr<Connection>, std::unique_ptr<Connection>>>
Connection::Pair(EventLoop* loop, const ConnectionOptions& options) {
  bufferevent* pair[2];
  if (bufferevent_pair_new(loop->base(), BevOptions(options), pair) != 0) {
    return absl::ResourceExhaustedError("bufferevent_pair_new failed");
  }
  std::unique_ptr<Connection> a(new Connection(loop, pair[0], options));
  std::unique_ptr<Connection> b(new Connection(loop, pair[1], options));
  a->Setup();
  b->Setup();
  a->peer_ = "pair";
  b->peer_ = "pair";
  return std::make_pair(std::move(a), std::move(b));
}

Connection::~Connection() {
  ReleaseBufferevent();
  if (private_in_ != nullptr) evbuffer_free(private_in_);
  if (pending_out_ != nullptr) evbuffer_free(pending_out_);
}

evbuffer* Connection::input() const {
  return direct_read_ ? private_in_ : bufferevent_get_input(bev_);
}

void Connection::FlushPending() {
  if (bev_ == nullptr || evbuffer_get_length(pending_out_) == 0) return;
  evbuffer* out = bufferevent_get_output(bev_);
  if (direct_read_ && options_.write_now && evbuffer_get_length(out) == 0) {
    // Write now rather than on the next loop turn, straight from the
    // unlocked buffer: the peer starts on these answers a turn earlier, and
    // when the socket takes everything the bufferevent's write event is
    // never armed (no epoll_ctl, no extra wake-up). Direct mode has no rate
    // limits, so no bucket is bypassed. Errors are left for the
    // bufferevent's writer to report.
    evbuffer_write_atmost(pending_out_, bufferevent_getfd(bev_),
                          static_cast<ev_ssize_t>(options_.max_write_per_turn));
  }
  // What the socket did not take is queued behind, in order, in one locked
  // step (the chains move; nothing is copied).
  if (evbuffer_get_length(pending_out_) != 0) {
    evbuffer_add_buffer(out, pending_out_);
  }
  if (!writable_) HandleDrained();
}

void Connection::CheckWritable(size_t output) {
  if (writable_ && output > options_.write_high_watermark) {
    writable_ = false;
    if (handler_ != nullptr) handler_->OnWritabilityChanged(false);
  }
}

void Connection::ReleaseBufferevent() {
  if (bev_ == nullptr) return;
  read_event_.reset();  // Before the socket closes.
  direct_read_ = reading_ = false;
  // Some libevent versions misbehave when a rate-limited bufferevent is
  // freed: detach the limits first.
  if (in_group_) bufferevent_remove_from_rate_limit_group(bev_);
  if (rate_limited_) bufferevent_set_rate_limit(bev_, nullptr);
  in_group_ = rate_limited_ = false;
  if (bufferevent_getfd(bev_) < 0) {
    // A pair has no socket to close: tell the partner explicitly, or it
    // would never see the end of the stream.
    bufferevent_flush(bev_, EV_WRITE, BEV_FINISHED);
  }
  bufferevent_disable(bev_, EV_READ | EV_WRITE);
  bufferevent_setcb(bev_, nullptr, nullptr, nullptr, nullptr);
  // Safe inside the bufferevent's own callback: libevent defers the final
  // release until the callback returns.
  bufferevent_free(bev_);
  bev_ = nullptr;
}

void Connection::Start(ConnectionHandler* handler) {
  handler_ = handler;
  UpdateReadWatermarks();
  bufferevent_enable(bev_, EV_WRITE);
  UpdateReading();
}

size_t Connection::output_size() const {
  if (bev_ == nullptr) return 0;
  return evbuffer_get_length(bufferevent_get_output(bev_)) +
         evbuffer_get_length(pending_out_);
}

size_t Connection::input_size() const {
  if (bev_ == nullptr) return 0;
  return evbuffer_get_length(input());
}

void Connection::Write(absl::FunctionRef<void(Buffer&)> fill) {
  if (state_ == State::kClosed) return;
  if (in_read_) {
    // Batched; HandleRead() flushes once the handler returns, or earlier
    // once a batch is big enough that the peer can start on it.
    Buffer out(pending_out_);
    const size_t before = out.size();
    fill(out);
    written_total_ += out.size() - before;
    if (out.size() >= options_.eager_flush_bytes) FlushPending();
    CheckWritable(output_size());
    return;
  }
  Buffer out(bufferevent_get_output(bev_));
  const size_t before = out.size();
  fill(out);
  const size_t after = out.size();
  written_total_ += after - before;
  CheckWritable(after);
}

void Connection::PauseReading() {
  paused_by_user_ = true;
  UpdateReading();
}

void Connection::ResumeReading() {
  paused_by_user_ = false;
  UpdateReading();
}

void Connection::UpdateReadWatermarks() {
  if (direct_read_) return;  // ReadSocket() applies them itself.
  size_t high = std::max(wanted_, options_.read_buffer_bytes);
  bufferevent_setwatermark(bev_, EV_READ, wanted_, high);
}

void Connection::SetReading(bool on) {
  if (!direct_read_) {
    // Disabling explicitly matters: input left at the high watermark can
    // otherwise re-fire EV_READ and spin (libevent #891).
    if (on) {
      bufferevent_enable(bev_, EV_READ);
    } else {
      bufferevent_disable(bev_, EV_READ);
    }
    return;
  }
  if (on == reading_) return;
  reading_ = on;
  if (on) {
    event_add(read_event_.get(), nullptr);
  } else {
    event_del(read_event_.get());
  }
}

void Connection::UpdateReading() {
  if (state_ != State::kOpen || handler_ == nullptr || connecting_) return;
  if (!paused_by_user_ && !read_closed_) {
    SetReading(true);
    // Input that arrived while paused gets no new read event: process it.
    if (evbuffer_get_length(input()) >= wanted_) {
      event_active(kick_.get(), EV_READ, 0);
    }
  } else {
    SetReading(false);
  }
}

void Connection::UseDirectRead() {
  int fd = bufferevent_getfd(bev_);
  if (fd < 0 || direct_read_) return;
  read_event_.reset(event_new(loop_->base(), fd, EV_READ | EV_PERSIST,
                              &Connection::OnDirectRead, this));
  if (read_event_ == nullptr) return;  // Keep libevent's reader.
  bufferevent_disable(bev_, EV_READ);
  evbuffer_add_buffer(private_in_, bufferevent_get_input(bev_));
  direct_read_ = true;
  reading_ = false;
}

bool Connection::ReadSocket(absl::Status* why, bool* eof) {
  evbuffer* in = private_in_;
  int fd = bufferevent_getfd(bev_);
  size_t high = std::max(wanted_, options_.read_buffer_bytes);
  size_t budget = options_.max_read_per_event;
  size_t chunk = 16 * 1024;  // Grows while reads come back full.
  bool open = true;
  while (budget > 0) {
    size_t have = evbuffer_get_length(in);
    size_t want = std::min(chunk, budget);
    if (state_ == State::kOpen) {
      if (have >= high) break;  // Bounded input: the handler must drain.
      want = std::min(want, high - have);
    }
    evbuffer_iovec vec[2];
    int nvec = evbuffer_reserve_space(in, static_cast<ev_ssize_t>(want), vec, 2);
    if (nvec <= 0) break;
    iovec iov[2];
    size_t reserved = 0;
    for (int i = 0; i < nvec; ++i) {
      iov[i] = iovec{vec[i].iov_base, vec[i].iov_len};
      reserved += vec[i].iov_len;
    }
    ssize_t n = readv(fd, iov, nvec);
    if (n <= 0) {
      evbuffer_commit_space(in, vec, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        break;
      }
      open = false;
      *eof = n == 0;
      *why = n == 0 ? absl::UnavailableError(absl::StrCat(
                          "connection to ", peer_, " closed by peer"))
                    : absl::UnavailableError(absl::StrCat(
                          "connection to ", peer_, " failed: ",
                          evutil_socket_error_to_string(errno)));
      break;
    }
    size_t left = static_cast<size_t>(n);
    int used = 0;
    for (int i = 0; i < nvec && left > 0; ++i, ++used) {
      vec[i].iov_len = std::min(left, vec[i].iov_len);
      left -= vec[i].iov_len;
    }
    evbuffer_commit_space(in, vec, used);
    budget -= std::min<size_t>(budget, n);
    if (static_cast<size_t>(n) < reserved) break;  // The socket is drained.
    chunk = std::min<size_t>(chunk * 4, 256 * 1024);
  }
  return open;
}

void Connection::OnDirectRead(int, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  absl::Status why;
  bool eof = false;
  bool open = self->ReadSocket(&why, &eof);
  // Deliver what arrived before the end of the stream, then close.
  self->HandleRead();
  if (open || self->state_ == State::kClosed) return;
  if (eof && self->KeepWritingAfterEof()) return;
  self->FinishClose(self->state_ == State::kDraining ? absl::OkStatus() : why);
}

bool Connection::KeepWritingAfterEof() {
  // The peer shut down only its sending side: answers may still go out.
  if (state_ != State::kOpen &&
      (state_ != State::kDraining || output_size() == 0)) {
    return false;
  }
  // Set before the handler hears of it, so that a CloseAfterFlush() from
  // OnReadClosed() does not wait for an EOF that has already come.
  read_closed_ = true;
  SetReading(false);
  if (!direct_read_) bufferevent_disable(bev_, EV_READ);
  if (state_ == State::kOpen &&
      (handler_ == nullptr || !handler_->OnReadClosed())) {
    return state_ == State::kClosed;  // Else the caller closes it now.
  }
  return true;
}

void Connection::OnRead(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->HandleRead();
}

void Connection::HandleRead() {
  if (state_ == State::kDraining) {
    // Closing: discard input so that the peer's EOF (or RST) is seen.
    evbuffer* in = input();
    evbuffer_drain(in, evbuffer_get_length(in));
    return;
  }
  if (state_ != State::kOpen || handler_ == nullptr) return;
  if (paused_by_user_) return;
  Buffer input(this->input());
  if (input.size() < wanted_) return;
  in_read_ = true;
  size_t wanted = handler_->OnReadable(input);
  in_read_ = false;
  FlushPending();
  if (state_ != State::kOpen) return;
  handler_->OnOutputDrained();
  if (state_ != State::kOpen) return;
  if (wanted == 0) {  // The handler asks to stop reading.
    paused_by_user_ = true;
    UpdateReading();
    return;
  }
  if (wanted != wanted_) {
    wanted_ = wanted;
    UpdateReadWatermarks();
  }
  // Enough is already buffered for the next call (the handler consumed only
  // part of it): no new read event will come for it, so run it from the
  // loop.
  if (input.size() >= wanted_ && !paused_by_user_) {
    event_active(kick_.get(), EV_READ, 0);
  }
}

void Connection::OnWrite(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->HandleDrained();
}

void Connection::HandleDrained() {
  size_t left = output_size();
  if (state_ == State::kDraining) {
    if (left != 0) return;
    int fd = bufferevent_getfd(bev_);
    if (fd < 0 || read_closed_) {
      // A pair has no half-close; a peer that already sent EOF has had
      // everything.
      if (fd >= 0) shutdown(fd, SHUT_WR);
      FinishClose(absl::OkStatus());
    } else {
      shutdown(fd, SHUT_WR);  // The peer sees EOF; we wait for its EOF.
    }
    return;
  }
  if (state_ != State::kOpen || handler_ == nullptr) return;
  if (!writable_ && left <= options_.write_low_watermark) {
    writable_ = true;
    handler_->OnWritabilityChanged(true);
    if (state_ != State::kOpen || handler_ == nullptr) return;
  }
  if (!in_read_) handler_->OnOutputDrained();
}

void Connection::OnEvent(bufferevent* bev, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (what & BEV_EVENT_CONNECTED) {
    self->connect_timer_.Cancel();
    self->connecting_ = false;
    SetNoDelay(bufferevent_getfd(bev));
    if (self->tls_ != TlsRole::kNone) {
      // Before any input reaches the handler.
      self->peer_identity_ =
          internal::ReadPeerIdentity(bufferevent_openssl_get_ssl(bev));
    } else if (self->options_.direct_read && !self->rate_limited_ &&
               !self->in_group_) {
      self->UseDirectRead();
    }
    self->UpdateReading();
    if (auto cb = std::move(self->on_connected_)) cb(absl::OkStatus());
    return;
  }
  if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) &&
      !self->connecting_ && self->KeepWritingAfterEof()) {
    return;
  }
  if (self->state_ == State::kDraining && (what & BEV_EVENT_EOF)) {
    self->FinishClose(absl::OkStatus());
    return;
  }
  absl::Status why;
  if (self->tls_ != TlsRole::kNone) {
    why = self->TlsFailure(what);
  } else if (what & BEV_EVENT_EOF) {
    why = absl::UnavailableError(
        absl::StrCat("connection to ", self->peer_, " closed by peer"));
  } else {
    why = absl::UnavailableError(absl::StrCat(
        "connection to ", self->peer_, " failed: ",
        SocketError(bufferevent_getfd(bev))));
  }
  if (self->on_connected_) {
    self->connect_timer_.Cancel();
    auto cb = std::move(self->on_connected_);
    self->FinishClose(why);
    cb(why);
    return;
  }
  self->FinishClose(why);
}

void Connection::CloseAfterFlush() {
  if (state_ != State::kOpen) return;
  FlushPending();
  state_ = State::kDraining;
  bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
  if (!direct_read_) bufferevent_setwatermark(bev_, EV_READ, 0, 0);
  bufferevent_enable(bev_, EV_WRITE);
  if (!connecting_ && !read_closed_) SetReading(true);
  linger_timer_.Start(options_.linger,
                      [this] { FinishClose(absl::OkStatus()); });
  if (output_size() == 0) HandleDrained();
}

void Connection::Close(absl::Status why) { FinishClose(std::move(why)); }

void Connection::FinishClose(absl::Status why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  close_status_ = std::move(why);
  linger_timer_.Cancel();
  connect_timer_.Cancel();
  ReleaseBufferevent();
  // OnClosed runs from the loop, outside the caller's stack.
  event_active(kick_.get(), EV_READ, 0);
}

void Connection::OnKick(int, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->state_ == State::kClosed) {
    if (self->handler_ != nullptr) {
      ConnectionHandler* handler = self->handler_;
      self->handler_ = nullptr;  // Exactly once.
      handler->OnClosed(self->close_status_);
    }
    return;
  }
  self->HandleRead();
}

absl::Status Connection::SetRateLimits(const TokenBucket* bucket,
                                       const RateLimitGroup* group) {
  if (bev_ == nullptr) return absl::FailedPreconditionError("closed");
  if (bufferevent_getfd(bev_) < 0) {
    return absl::FailedPreconditionError(
        "rate limits apply only to socket connections");
  }
  if (direct_read_ && (bucket != nullptr || group != nullptr)) {
    // Only libevent's own reader charges and obeys the buckets.
    bool was_reading = reading_;
    SetReading(false);
    read_event_.reset();
    evbuffer_prepend_buffer(bufferevent_get_input(bev_), private_in_);
    direct_read_ = false;
    UpdateReadWatermarks();
    if (was_reading) SetReading(true);
  }
  if (bucket != nullptr) {
    if (bufferevent_set_rate_limit(bev_, bucket->cfg()) != 0) {
      return absl::InternalError("bufferevent_set_rate_limit failed");
    }
    rate_limited_ = true;
  }
  if (group != nullptr) {
    if (bufferevent_add_to_rate_limit_group(bev_, group->get()) != 0) {
      return absl::InternalError("bufferevent_add_to_rate_limit_group failed");
    }
    in_group_ = true;
  }
  return absl::OkStatus();
}

}  // namespace bevrpc::transport
