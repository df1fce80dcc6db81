#include "rpc/internal/keepalive.h"

#include <utility>

namespace bevrpc::internal {

Keepalive::Keepalive(transport::Connection* conn, absl::Duration time,
                     absl::Duration timeout,
                     absl::AnyInvocable<void(uint64_t)> send_ping,
                     absl::AnyInvocable<void()> on_dead)
    : conn_(conn),
      time_(time),
      timeout_(timeout),
      send_ping_(std::move(send_ping)),
      on_dead_(std::move(on_dead)),
      timer_(conn->loop()) {}

void Keepalive::Start() {
  reads_seen_ = reads_;
  input_seen_ = conn_->input_size();
  last_read_ = MonotonicNow();
  ping_outstanding_ = false;
  Arm(time_);
}

void Keepalive::Stop() {
  timer_.Cancel();
  ping_outstanding_ = false;
}

void Keepalive::Arm(absl::Duration after) {
  timer_.Start(after, [this] { OnTimer(); });
}

void Keepalive::OnTimer() {
  const absl::Duration now = MonotonicNow();
  // Part of a frame arriving counts as reading: a large frame on a slow
  // link is not a dead peer, though its handler has not been called yet.
  const size_t buffered = conn_->input_size();
  const bool read = reads_ != reads_seen_ || buffered != input_seen_;
  reads_seen_ = reads_;
  input_seen_ = buffered;
  if (read) last_read_ = now;
  if (ping_outstanding_) {
    ping_outstanding_ = false;
    if (!read) {
      on_dead_();  // Last: the owner closes the connection.
      return;
    }
  }
  const absl::Duration idle = now - last_read_;
  if (idle < time_) {
    // Right after a read, look again soon: reads may still be going on.
    Arm(read ? time_ / 4 : time_ - idle);
    return;
  }
  ping_outstanding_ = true;
  send_ping_(++pings_sent_);
  Arm(timeout_);
}

}  // namespace bevrpc::internal
