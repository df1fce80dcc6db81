// Connection: one byte stream (a TCP socket or an in-process bufferevent
// pair) driven by one EventLoop, with framing-friendly reads and
// backpressure-aware writes.
//
// Reading: the owner's ConnectionHandler::OnReadable() gets the input buffer
// and returns how many bytes it needs buffered before it can make progress
// (e.g. 12 for a frame header, then the rest of the frame). The connection
// sets the read low watermark to that number, so libevent calls back only
// when a whole unit is there; the read high watermark is the larger of that
// number and ConnectionOptions::read_buffer_bytes, bounding buffered input.
//
// Writing: Write() appends to the output buffer. When the output passes
// write_high_watermark the connection becomes "not writable"; when
// libevent's writecb reports the output at or below write_low_watermark it
// becomes writable again. The handler hears both transitions, and uses them
// to stop producing (streams, admission of new calls). Reading never stops
// because of our own unsent output: two peers that both did so would wait
// for each other forever. Reading stops only when the handler says so
// (PauseReading(), or OnReadable() returning 0), e.g. because what it has
// read is not consumed yet.
//
// Half-close: when the peer shuts down its sending side, OnReadClosed()
// decides whether the connection stays open for writing (a server still
// answering the calls it has read) or closes as before.
//
//   auto conn = Connection::Adopt(loop, fd, options).value();
//   conn->Start(&handler);
//   conn->Write([&](Buffer& out) { out.Append(frame); });
//
// Threading: every method, and every handler callback, is on the loop
// thread. Other threads hand work to the loop with EventLoop::Post().
// Lifetime: the owner destroys the Connection on its loop thread, but never
// from inside one of its handler callbacks (post the deletion instead).
#ifndef BEVRPC_TRANSPORT_CONNECTION_H_
#define BEVRPC_TRANSPORT_CONNECTION_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transport/address.h"
#include "transport/buffer.h"
#include "transport/event_loop.h"
#include "transport/peer_identity.h"

struct bufferevent;
struct evbuffer;
struct bufferevent_rate_limit_group;

namespace bevrpc::transport {

class TokenBucket;
class RateLimitGroup;
class TlsContext;

struct ConnectionOptions {
  // Input bytes buffered before reading from the socket pauses, unless the
  // handler asks for more (a large frame). Default: 256 KiB.
  size_t read_buffer_bytes = 256 * 1024;
  // Output above this makes the connection not writable. Default: 1 MiB.
  size_t write_high_watermark = 1024 * 1024;
  // Output at or below this makes it writable again. Default: 256 KiB.
  size_t write_low_watermark = 256 * 1024;
  // Run bufferevent callbacks from the loop rather than inline
  // (BEV_OPT_DEFER_CALLBACKS). Default: false.
  bool defer_callbacks = false;
  // How long a graceful close waits for output to drain and the peer to
  // close its side before closing anyway. Default: 2 s.
  absl::Duration linger = absl::Seconds(2);
  // Sockets: read with our own readv into the input buffer instead of
  // libevent's reader, which takes at most 4 KiB per read call. Connections
  // with rate limits always use libevent's reader, which enforces them.
  // Default: true.
  bool direct_read = true;
  // Most bytes read from the socket per read event. Default: 256 KiB.
  size_t max_read_per_event = 256 * 1024;
  // Most bytes written per loop turn (libevent's default is 16 KiB).
  // Default: 256 KiB.
  size_t max_write_per_turn = 256 * 1024;
  // Direct mode: output produced while handling input is written to the
  // socket at the end of that read callback, not on the next loop turn.
  // Default: true.
  bool write_now = true;
  // Direct mode: during a read callback, output is written as soon as this
  // much is batched, so the peer works on the first answers while later
  // ones are produced: both ends run at once instead of taking turns. Small
  // enough to split a batch of a few dozen small calls; a write costs about
  // as much as handling a few calls. Default: 2 KiB (64 KiB: -30 % QPS with
  // 64 small calls in flight on one connection).
  size_t eager_flush_bytes = 2 * 1024;
};

// The owner's side of a connection. Called on the loop thread only.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;

  // `input` holds at least the number of bytes the previous call returned
  // (1 before the first call). Consume whole units from it; return the total
  // number of bytes that must be buffered before the next call (>= 1).
  // Return 0 to stop reading (e.g. after deciding to close).
  virtual size_t OnReadable(Buffer& input) = 0;

  // The output crossed the high watermark (false) or drained to the low
  // watermark (true). Reading goes on either way.
  virtual void OnWritabilityChanged(bool writable) {}

  // The output may have shrunk: called after each read callback's output
  // is flushed and whenever libevent reports a write that left the output
  // at or below write_low_watermark. For owners that account for unsent
  // bytes (memory budgets). Cheap callers only: it runs often.
  virtual void OnOutputDrained() {}

  // The peer shut down its sending side (EOF) while the connection is
  // open. Return true to keep it open for writing: nothing more is read,
  // Write() still works, and the owner ends it later with
  // CloseAfterFlush() or Close(). Return false to close it now, as for
  // any other EOF (OnClosed(UNAVAILABLE) follows). Default: false.
  virtual bool OnReadClosed() { return false; }

  // The connection is closed: the peer closed, an error, Close() or the end
  // of CloseAfterFlush(). Called exactly once, never from inside Close()
  // itself, and never after the Connection is destroyed. `why` is the
  // status given to Close(), OK after CloseAfterFlush(), UNAVAILABLE when
  // the peer closed or the socket failed.
  virtual void OnClosed(const absl::Status& why) = 0;
};

class Connection {
 public:
  // Takes ownership of a connected socket (e.g. from a Listener).
  static absl::StatusOr<std::unique_ptr<Connection>> Adopt(
      EventLoop* loop, int fd, const ConnectionOptions& options);

  // Starts a non-blocking connect. `on_connected` is called exactly once on
  // the loop thread: OK once connected, UNAVAILABLE if refused or failed,
  // DEADLINE_EXCEEDED after `timeout`. Start() may be called before or after.
  // If Connect() itself returns an error, `on_connected` is never called.
  static absl::StatusOr<std::unique_ptr<Connection>> Connect(
      EventLoop* loop, const SocketAddress& address,
      const ConnectionOptions& options, absl::Duration timeout,
      absl::AnyInvocable<void(absl::Status)> on_connected);

  // TLS, server side: takes ownership of a connected socket whose peer
  // starts a TLS handshake (Listener, after PeekFirstByte()). Input is
  // delivered decrypted, and only once the handshake is done;
  // peer_identity() is set before the handler's first callback. Reading is
  // always libevent's (direct_read is ignored). `on_handshake` is called
  // exactly once on the loop thread: OK when the handshake is done,
  // UNAVAILABLE ("TLS handshake with 10.0.0.2:41234 failed: peer did not
  // return a certificate") or DEADLINE_EXCEEDED after `handshake_timeout`;
  // on failure the handler's OnClosed() gets the same status. `tls` must be
  // a server context; it may go away before the connection.
  static absl::StatusOr<std::unique_ptr<Connection>> AdoptTls(
      EventLoop* loop, int fd, const ConnectionOptions& options,
      const TlsContext& tls, absl::Duration handshake_timeout,
      absl::AnyInvocable<void(absl::Status)> on_handshake);

  // TLS, client side: Connect() plus a TLS handshake; `on_connected` hears
  // OK only after the handshake, within `timeout` for both. `host` (the
  // target's host name or IP address) is sent as SNI and verified in the
  // server's certificate (see TlsContext::NewSsl()). Handshake failures are
  // UNAVAILABLE and say why: "TLS handshake with 127.0.0.1:5000 failed:
  // certificate verify failed (unable to get local issuer certificate)".
  static absl::StatusOr<std::unique_ptr<Connection>> ConnectTls(
      EventLoop* loop, const SocketAddress& address,
      const ConnectionOptions& options, absl::Duration timeout,
      const TlsContext& tls, absl::string_view host,
      absl::AnyInvocable<void(absl::Status)> on_connected);

  // Two in-process connections joined by bufferevent_pair_new (no socket).
  static absl::StatusOr<
      std::pair<std::unique_ptr<Connection>, std::unique_ptr<Connection>>>
  Pair(EventLoop* loop, const ConnectionOptions& options);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts delivering input to `handler`, which must outlive the connection.
  void Start(ConnectionHandler* handler);

  // Appends to the output with `fill`, then updates writability.
  void Write(absl::FunctionRef<void(Buffer&)> fill);
  bool writable() const { return writable_; }
  // True once the peer has shut down its sending side and the handler
  // kept the connection open (OnReadClosed()).
  bool read_closed() const { return read_closed_; }
  size_t output_size() const;
  // Bytes ever appended by Write(), and of those the ones handed to the
  // socket (or the pair's partner): a writer that remembers
  // bytes_written() after a Write() knows its bytes have left once
  // bytes_sent() reaches that mark.
  uint64_t bytes_written() const { return written_total_; }
  uint64_t bytes_sent() const { return written_total_ - output_size(); }
  // Input bytes buffered and not yet consumed by the handler: grows while a
  // frame arrives, before OnReadable() is called for it (keepalive counts
  // that as the peer being alive). 0 once closed.
  size_t input_size() const;

  // Stops and restarts delivering input (independent of backpressure).
  void PauseReading();
  void ResumeReading();

  // Graceful close: stop delivering input, send what is buffered, half-close,
  // wait (bounded by options.linger) for the peer to close, then close.
  // OnClosed(OK) follows. Idempotent.
  void CloseAfterFlush();
  // Closes now; buffered output is dropped. OnClosed(why) is delivered from
  // the loop later (never inside this call). Idempotent.
  void Close(absl::Status why);

  // Applies a per-connection token bucket and/or joins a group; either may
  // be null. Both must outlive the connection. Sockets only.
  absl::Status SetRateLimits(const TokenBucket* bucket,
                             const RateLimitGroup* group);

  bool closed() const { return state_ == State::kClosed; }
  // True for AdoptTls() and ConnectTls() connections.
  bool is_tls() const { return tls_ != TlsRole::kNone; }
  const std::string& peer() const { return peer_; }
  // The peer's verified certificate (TLS with a peer certificate); null
  // otherwise. Set once the TLS handshake is done, before the handler's
  // first callback.
  const std::shared_ptr<const PeerIdentity>& peer_identity() const {
    return peer_identity_;
  }
  EventLoop* loop() const { return loop_; }

 private:
  enum class State { kOpen, kDraining, kClosed };
  enum class TlsRole { kNone, kServer, kClient };

  Connection(EventLoop* loop, bufferevent* bev, const ConnectionOptions& opts);
  void Setup();
  // A Connection around `bev` (owned), set up; its peer is read from
  // `adopted_fd` when that is >= 0.
  static std::unique_ptr<Connection> Wrap(EventLoop* loop, bufferevent* bev,
                                          const ConnectionOptions& options,
                                          TlsRole tls, int adopted_fd);
  // Starts connecting bev_ to `address`, timing out after `timeout`.
  absl::Status BeginConnect(const SocketAddress& address,
                            absl::Duration timeout,
                            absl::AnyInvocable<void(absl::Status)> on_connected);
  // Arms connect_timer_ to fail on_connected_ with DEADLINE_EXCEEDED.
  void StartConnectTimer(absl::Duration timeout, absl::string_view what);
  // The status for a failed or closed TLS connection (event callback).
  absl::Status TlsFailure(short what);
  static void OnRead(bufferevent* bev, void* arg);
  static void OnWrite(bufferevent* bev, void* arg);
  static void OnEvent(bufferevent* bev, short what, void* arg);
  static void OnKick(int fd, short what, void* arg);
  static void OnDirectRead(int fd, short what, void* arg);
  // Starts reading with our own read event (sockets without rate limits).
  void UseDirectRead();
  // Reads what the socket has (bounded) into the input buffer; returns
  // false at EOF or on an error, with the reason in *why.
  // Sets *eof when the peer shut down its side cleanly.
  bool ReadSocket(absl::Status* why, bool* eof);
  // After the peer's EOF: true when the connection stays open for writing
  // (the handler asked for it, or a graceful close still has output to
  // send).
  bool KeepWritingAfterEof();
  void SetReading(bool on);
  // The buffer input is delivered from.
  evbuffer* input() const;
  // Moves output batched during a read callback to the bufferevent.
  void FlushPending();
  void CheckWritable(size_t output);
  void HandleRead();
  void HandleDrained();
  void UpdateReadWatermarks();
  void UpdateReading();
  void FinishClose(absl::Status why);
  // Frees the bufferevent (closing the socket); idempotent.
  void ReleaseBufferevent();

  EventLoop* loop_;
  bufferevent* bev_;
  ConnectionOptions options_;
  ConnectionHandler* handler_ = nullptr;
  std::string peer_;
  std::shared_ptr<const PeerIdentity> peer_identity_;
  State state_ = State::kOpen;
  size_t wanted_ = 1;
  bool paused_by_user_ = false;
  bool writable_ = true;
  bool in_group_ = false;
  bool connecting_ = false;
  bool direct_read_ = false;
  bool reading_ = false;
  bool rate_limited_ = false;
  bool read_closed_ = false;  // The peer's EOF was seen; reading is over.
  TlsRole tls_ = TlsRole::kNone;
  uint64_t written_total_ = 0;
  absl::Status close_status_;
  // Activated to run input processing or a deferred OnClosed outside the
  // caller's stack.
  EventPtr kick_;
  // Our own read event on the socket when direct_read_ is set.
  EventPtr read_event_;
  // Unlocked buffers only this loop thread touches: input read directly
  // from the socket, and output written during a read callback, moved to
  // the bufferevent in one step at its end.
  evbuffer* private_in_ = nullptr;
  evbuffer* pending_out_ = nullptr;
  bool in_read_ = false;
  Timer linger_timer_;
  Timer connect_timer_;
  absl::AnyInvocable<void(absl::Status)> on_connected_;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_CONNECTION_H_
