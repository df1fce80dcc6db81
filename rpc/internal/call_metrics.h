// Per-method call metrics, shared by the server and the client: the series
// of one {service, method} resolved once, so that recording a call is a few
// per-thread adds (no lock, no allocation). Internal to rpc/.
//
// Names (docs/observability.md), SIDE = "server" or "client", labels
// {service, method} ("bevrpc.echo.Echo", "Echo"):
//   bevrpc_SIDE_started_total                   calls started
//   bevrpc_SIDE_handled_total{...,code="OK"}    calls ended, by status code
//   bevrpc_SIDE_in_flight                       calls started, not ended
//   bevrpc_SIDE_handling_seconds                latency histogram
//   bevrpc_SIDE_received_bytes_total            payload bytes received
//   bevrpc_SIDE_sent_bytes_total                payload bytes sent
//   bevrpc_SIDE_stream_messages_received_total  MESSAGE frames received
//   bevrpc_SIDE_stream_messages_sent_total      MESSAGE frames sent
// and on the client only:
//   bevrpc_client_retries_total                 attempts after the first
//   bevrpc_client_hedges_total                  hedged attempts after the first
//
//   absl::StatusOr<CallMetricFamilies> f =
//       CallMetricFamilies::Register(registry, CallMetricFamilies::kServer);
//   CallMetrics echo(*f, "bevrpc.echo.Echo", "Echo");   // may lock, allocate
//   echo.Started();                                    // hot path
//   echo.Ended(absl::StatusCode::kOk, latency);
//
// Thread-safety: CallMetrics is thread-safe (each method writes to the
// calling thread's cells). Handled(code) resolves a code's series on its
// first use (locking the registry once per code and method).
#ifndef BEVRPC_RPC_INTERNAL_CALL_METRICS_H_
#define BEVRPC_RPC_INTERNAL_CALL_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/metrics/metrics.h"

namespace bevrpc::internal {

// The families of one side, registered in one registry (borrowed; it must
// outlive every CallMetrics made from them). Registering twice in one
// registry returns the same families.
struct CallMetricFamilies {
  enum Side { kServer, kClient };
  static absl::StatusOr<CallMetricFamilies> Register(
      metrics::MetricsRegistry* registry, Side side);

  metrics::CounterFamily* started = nullptr;
  metrics::CounterFamily* handled = nullptr;
  metrics::GaugeFamily* in_flight = nullptr;
  metrics::HistogramFamily* handling = nullptr;
  metrics::CounterFamily* received_bytes = nullptr;
  metrics::CounterFamily* sent_bytes = nullptr;
  metrics::CounterFamily* stream_received = nullptr;
  metrics::CounterFamily* stream_sent = nullptr;
  // Client only (null on the server).
  metrics::CounterFamily* retries = nullptr;
  metrics::CounterFamily* hedges = nullptr;
};

// Label values for calls to a method nobody registered (the server) and
// for methods past a channel's bound (the client): one series, whatever
// names a peer sends.
inline constexpr absl::string_view kUnknownLabel = "__unknown__";
inline constexpr absl::string_view kOverflowLabel = "__overflow__";

// Splits "package.Service/Method" into its labels; a name without '/' is
// all service, with method "".
void SplitMethodName(absl::string_view full_name, absl::string_view* service,
                     absl::string_view* method);

class CallMetrics {
 public:
  // Resolves the series of {service, method} (locks and allocates).
  CallMetrics(const CallMetricFamilies& families, absl::string_view service,
              absl::string_view method);
  CallMetrics(const CallMetrics&) = delete;
  CallMetrics& operator=(const CallMetrics&) = delete;

  void Started() {
    started_->Increment();
    in_flight_->Increment();
  }
  // A call counted by Started() ended with `code` after `latency`.
  void Ended(absl::StatusCode code, absl::Duration latency) {
    in_flight_->Decrement();
    Handled(code)->Increment();
    handling_->ObserveDuration(latency);
  }
  // Ended() with the latency in nanoseconds (no Duration arithmetic).
  void EndedNanos(absl::StatusCode code, int64_t latency_ns) {
    in_flight_->Decrement();
    Handled(code)->Increment();
    handling_->ObserveNanos(latency_ns);
  }
  // A call that ended as it started (refused before dispatch): counted as
  // started and handled, never in flight.
  void Refused(absl::StatusCode code, absl::Duration latency) {
    started_->Increment();
    Handled(code)->Increment();
    handling_->ObserveDuration(latency);
  }
  void AddReceivedBytes(uint64_t n) { received_bytes_->Add(n); }
  void AddSentBytes(uint64_t n) { sent_bytes_->Add(n); }
  void StreamMessageReceived(uint64_t bytes) {
    stream_received_->Increment();
    received_bytes_->Add(bytes);
  }
  void StreamMessageSent(uint64_t bytes) {
    stream_sent_->Increment();
    sent_bytes_->Add(bytes);
  }
  // Client only: no-ops on the server's.
  void Retried() {
    if (retries_ != nullptr) retries_->Increment();
  }
  void Hedged() {
    if (hedges_ != nullptr) hedges_->Increment();
  }

  // The handled series of `code` (codes outside the canonical 17 count as
  // UNKNOWN). Lock-free once the code has been seen.
  metrics::Counter* Handled(absl::StatusCode code) {
    int i = static_cast<int>(code);
    if (i < 0 || i >= kNumCodes) i = static_cast<int>(absl::StatusCode::kUnknown);
    metrics::Counter* c = handled_[i].load(std::memory_order_acquire);
    return c != nullptr ? c : ResolveHandled(i);
  }

 private:
  static constexpr int kNumCodes = 17;  // OK .. UNAUTHENTICATED
  metrics::Counter* ResolveHandled(int code);

  metrics::CounterFamily* const handled_family_;
  const std::string service_;
  const std::string method_;
  metrics::Counter* const started_;
  metrics::Gauge* const in_flight_;
  metrics::Histogram* const handling_;
  metrics::Counter* const received_bytes_;
  metrics::Counter* const sent_bytes_;
  metrics::Counter* const stream_received_;
  metrics::Counter* const stream_sent_;
  metrics::Counter* const retries_;
  metrics::Counter* const hedges_;
  std::array<std::atomic<metrics::Counter*>, kNumCodes> handled_{};
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CALL_METRICS_H_
