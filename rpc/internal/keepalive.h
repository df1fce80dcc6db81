// Keepalive: finds a dead peer on a quiet connection. After `time` with
// nothing read from the connection it sends a PING; if nothing at all (the
// PONG or any other frame, or part of one) is read within `timeout` after
// that, the peer is declared dead. The client's and the server's
// connections share it; the rules are in docs/protocol.md, "Keepalive".
// Internal to rpc/.
//
// Reads only bump a counter; a timer samples it, every `time` / 4 while
// reads go on. So the PING goes out between `time` and 1.25 x `time` after
// the last read, never sooner (the monotonic clock decides, not the timer),
// and a busy connection costs one increment per read plus four timer
// wake-ups per `time`.
//
//   keepalive_ = std::make_unique<Keepalive>(
//       conn_.get(), options.keepalive_time, options.keepalive_timeout,
//       [this](uint64_t n) { SendPing(n); }, [this] { OnPeerDead(); });
//   keepalive_->Start();
//   size_t OnReadable(Buffer& in) { keepalive_->OnRead(); ... }
//
// Threading: call only on the connection's loop thread.
#ifndef BEVRPC_RPC_INTERNAL_KEEPALIVE_H_
#define BEVRPC_RPC_INTERNAL_KEEPALIVE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "transport/connection.h"
#include "transport/event_loop.h"

namespace bevrpc::internal {

// Time since an arbitrary epoch from the monotonic clock: keepalive and
// ping-rate checks must not jump with the wall clock.
inline absl::Duration MonotonicNow() {
  return absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

class Keepalive {
 public:
  // `conn` is borrowed and must outlive the Keepalive; the timer runs on its
  // loop. `send_ping` writes a PING whose payload is the 8-byte big-endian
  // `counter` (1, 2, ...); the owner may skip it (e.g. while closing).
  // `on_dead` is called at most once, from the timer, after which the
  // Keepalive is stopped; it must not destroy the Keepalive.
  Keepalive(transport::Connection* conn, absl::Duration time,
            absl::Duration timeout,
            absl::AnyInvocable<void(uint64_t counter)> send_ping,
            absl::AnyInvocable<void()> on_dead);

  // Starts watching; the idle time counts from now.
  void Start();
  // Stops for good: no more pings, `on_dead` is never called.
  void Stop();

  // Call whenever input is handed to the connection's handler.
  void OnRead() { ++reads_; }

  absl::Duration timeout() const { return timeout_; }

 private:
  void OnTimer();
  void Arm(absl::Duration after);

  transport::Connection* const conn_;
  const absl::Duration time_;
  const absl::Duration timeout_;
  absl::AnyInvocable<void(uint64_t)> send_ping_;
  absl::AnyInvocable<void()> on_dead_;
  uint64_t reads_ = 0;
  // What the last check saw: reads_, and the input buffered (growth is a
  // frame arriving).
  uint64_t reads_seen_ = 0;
  size_t input_seen_ = 0;
  // The latest time the last read can have happened (MonotonicNow()).
  absl::Duration last_read_;
  bool ping_outstanding_ = false;
  uint64_t pings_sent_ = 0;
  transport::Timer timer_;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_KEEPALIVE_H_
