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
// A picker prefers READY, IDLE and CONNECTING endpoints; TRANSIENT_FAILURE
// ones get calls only when no endpoint is in another state.
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

enum class EndpointState { kIdle, kConnecting, kReady, kTransientFailure };

// "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE".
absl::string_view EndpointStateName(EndpointState state);

class EndpointHealth {
 public:
  explicit EndpointHealth(int slots) : slots_(slots) {}
  EndpointHealth(const EndpointHealth&) = delete;
  EndpointHealth& operator=(const EndpointHealth&) = delete;

  EndpointState state() const {
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
  bool usable() const { return state() != EndpointState::kTransientFailure; }

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
  std::atomic<int> connecting_{0};
  std::atomic<int> ready_{0};
  std::atomic<int> failing_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int64_t> ewma_us_{0};
};

}  // namespace bevrpc::balancing

#endif  // BEVRPC_RPC_BALANCING_ENDPOINT_HEALTH_H_
