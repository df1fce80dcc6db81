// EndpointHealth: what the balancer knows about one endpoint, shared by the
// endpoint's connection slots (which report connects and failures, each on
// its own loop) and by pickers (which read it on any thread).
//
// State, gRPC's connectivity states:
//   IDLE               no connection and none being opened (connects on the
//                      first call picked for it)
//   CONNECTING         a connection is being opened, none is ready
//   READY              at least one connection is ready
//   TRANSIENT_FAILURE  every slot's last attempt failed; slots retry in the
//                      background after their backoff
//   EJECTED            the outlier detector (outlier_detector.h) took it out
//                      of rotation for a while, whatever its connections'
//                      state
// A picker prefers READY, IDLE and CONNECTING endpoints; TRANSIENT_FAILURE
// and EJECTED ones get calls only when no endpoint is in another state.
//
// least_loaded reads in_flight() and latency_ewma_us(), recorded per call
// by the channel while that balancer is in use.
//
// Threading: every method is thread-safe (relaxed atomics; the state is
// advisory: a pick that reads a state a moment old is fine).
#ifndef BEVRPC_RPC_BALANCING_ENDPOINT_HEALTH_H_
#define BEVRPC_RPC_BALANCING_ENDPOINT_HEALTH_H_

#include <atomic>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace bevrpc::balancing {

enum class EndpointState {
  kIdle,
  kConnecting,
  kReady,
  kTransientFailure,
  kEjected,
};

// "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "EJECTED".
absl::string_view EndpointStateName(EndpointState state);

// Nanoseconds of a monotonic clock (CLOCK_MONOTONIC); tests inject their
// own.
using MonotonicClock = int64_t (*)();
int64_t MonotonicNanos();

class EndpointHealth {
 public:
  explicit EndpointHealth(int slots, MonotonicClock clock = &MonotonicNanos)
      : slots_(slots), clock_(clock) {}
  EndpointHealth(const EndpointHealth&) = delete;
  EndpointHealth& operator=(const EndpointHealth&) = delete;

  EndpointState state() const {
    // The clock is read only while an ejection is recorded (rare).
    const int64_t until = ejected_until_.load(std::memory_order_relaxed);
    if (until != 0 && until > clock_()) return EndpointState::kEjected;
    if (ready_.load(std::memory_order_relaxed) > 0) {
      return EndpointState::kReady;
    }
    if (connecting_.load(std::memory_order_relaxed) > 0) {
      return EndpointState::kConnecting;
    }
    if (failing_.load(std::memory_order_relaxed) >= slots_) {
      return EndpointState::kTransientFailure;
    }
    return EndpointState::kIdle;
  }
  bool usable() const {
    const EndpointState s = state();
    return s != EndpointState::kTransientFailure &&
           s != EndpointState::kEjected;
  }

  // Outlier ejection, written by the OutlierDetector: the endpoint is
  // EJECTED until this clock() time; once it has passed, a non-zero value
  // means "on probation" until the detector clears it. 0: neither.
  int64_t ejected_until() const {
    return ejected_until_.load(std::memory_order_relaxed);
  }
  void set_ejected_until(int64_t until) {
    ejected_until_.store(until, std::memory_order_relaxed);
  }
  // Clears `seen` (probation over); false if another ejection replaced it.
  bool ClearEjection(int64_t seen) {
    return ejected_until_.compare_exchange_strong(seen, 0,
                                                  std::memory_order_relaxed);
  }
  int64_t now() const { return clock_(); }

  // Slot transitions. Each slot is in at most one of connecting / ready /
  // failing at a time and reports each change once.
  void AddConnecting(int d) { connecting_.fetch_add(d, std::memory_order_relaxed); }
  void AddReady(int d) { ready_.fetch_add(d, std::memory_order_relaxed); }
  void AddFailing(int d) { failing_.fetch_add(d, std::memory_order_relaxed); }

  // Per-call load (least_loaded).
  void CallStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void CallEnded(int64_t latency_us) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    // EWMA with alpha 1/8; racing updates may lose one sample, harmless.
    int64_t old = ewma_us_.load(std::memory_order_relaxed);
    int64_t next = old == 0 ? latency_us : old + (latency_us - old) / 8;
    ewma_us_.store(next < 1 ? 1 : next, std::memory_order_relaxed);
  }
  // A call counted by CallStarted() that moved elsewhere before it ran.
  void CallAbandoned() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  int64_t latency_ewma_us() const {
    return ewma_us_.load(std::memory_order_relaxed);
  }

 private:
  const int slots_;
  const MonotonicClock clock_;
  std::atomic<int64_t> ejected_until_{0};
  std::atomic<int> connecting_{0};
  std::atomic<int> ready_{0};
  std::atomic<int> failing_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int64_t> ewma_us_{0};
};

}  // namespace bevrpc::balancing

#endif  // BEVRPC_RPC_BALANCING_ENDPOINT_HEALTH_H_
