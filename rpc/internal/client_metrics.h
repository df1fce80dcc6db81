// ClientMetrics: a channel's per-method call metrics (call_metrics.h,
// bevrpc_client_*) and its per-endpoint series, in the registry of
// ChannelOptions::metrics_registry. Internal to rpc/.
//
// Per method, resolved on a method's first call and kept in a table that
// calls read without a lock. The table is bounded: past kMaxMethods
// distinct names, calls count under service and method "__overflow__".
//
// Per endpoint, labels {target, endpoint} (the channel's target as given,
// "IP:PORT"):
//   bevrpc_client_endpoint_in_flight          calls on it, sent or waiting
//   bevrpc_client_endpoint_errors_total       calls that ended on it with a
//                                             status other than OK (failed
//                                             attempts that were retried
//                                             included)
//   bevrpc_client_endpoint_ejections_total    outlier ejections
//   bevrpc_client_endpoint_state{...,state=S} 1 for its state, 0 for the
//                                             others (IDLE, CONNECTING,
//                                             READY, TRANSIENT_FAILURE,
//                                             EJECTED); read when scraped,
//                                             removed with the endpoint
// The first three stay (at their last values) after an endpoint leaves;
// each family holds at most metrics::MetricSpec::max_series series.
// Channels to one target share these series (Create()); where several have
// an endpoint, its state is the one the earliest of them that still has it
// sees, and its state series go only when the last of them lets it go.
//
// Threading: thread-safe.
#ifndef BEVRPC_RPC_INTERNAL_CLIENT_METRICS_H_
#define BEVRPC_RPC_INTERNAL_CLIENT_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/balancing/endpoint_health.h"
#include "rpc/internal/call_metrics.h"
#include "rpc/metrics/metrics.h"
#include "transport/sync.h"

namespace bevrpc::internal {

class ClientMetrics;
struct EndpointStateSeries;  // client_metrics.cc

// One endpoint's series, for one channel's endpoint. Shared by the endpoint
// (EndpointSet) and its slots.
struct EndpointMetrics {
  EndpointMetrics() = default;
  EndpointMetrics(const EndpointMetrics&) = delete;
  EndpointMetrics& operator=(const EndpointMetrics&) = delete;
  ~EndpointMetrics();  // Withdraws `health` from `state`.

  // Keeps the channel's series (which calls on the slots point to) alive.
  std::shared_ptr<ClientMetrics> owner;
  metrics::Gauge* in_flight = nullptr;
  metrics::Counter* errors = nullptr;
  metrics::Counter* ejections = nullptr;
  // The state series of the address, shared by every channel's
  // EndpointMetrics for it, and this one's health among those they read.
  std::shared_ptr<EndpointStateSeries> state;
  std::shared_ptr<const balancing::EndpointHealth> health;
};

class ClientMetrics : public std::enable_shared_from_this<ClientMetrics> {
 public:
  // Distinct method names with their own series; more share one.
  static constexpr size_t kMaxMethods = 1000;

  // `registry` is borrowed and must outlive this. Channels to one target
  // in one registry share one ClientMetrics (their series are the same
  // anyway): the live one, if there is one, is returned. So a client with
  // many channels to a service (one per connection, as a benchmark opens
  // them) looks its methods up in one table, which stays in cache, not in
  // one table per channel.
  static absl::StatusOr<std::shared_ptr<ClientMetrics>> Create(
      metrics::MetricsRegistry* registry, std::string target);
  ~ClientMetrics();

  // The series of "package.Service/Method". Lock-free once the name has
  // been seen; its first call resolves them (locks, allocates).
  CallMetrics* For(absl::string_view full_name) {
    const size_t hash = Hash(full_name);
    for (size_t i = hash & kMask, n = 0; n < kSlots; i = (i + 1) & kMask, ++n) {
      const Entry* e = slots_[i].load(std::memory_order_acquire);
      if (e == nullptr) break;
      if (e->hash == hash && e->name == full_name) return e->metrics.get();
    }
    return Insert(full_name, hash);
  }

  // The series of endpoint `address`, its state read from `health` while
  // the result lives (and no earlier holder of the address does).
  std::shared_ptr<EndpointMetrics> ForEndpoint(
      const std::string& address,
      std::shared_ptr<const balancing::EndpointHealth> health);

 private:
  struct Entry {
    std::string name;
    size_t hash;
    std::unique_ptr<CallMetrics> metrics;
  };
  // Open addressing, at most half full: a miss ends at an empty slot soon.
  static constexpr size_t kSlots = 2048;
  static constexpr size_t kMask = kSlots - 1;
  static_assert(kSlots >= 2 * kMaxMethods, "keep the table half empty");

  ClientMetrics() = default;
  static absl::StatusOr<std::shared_ptr<ClientMetrics>> Make(
      metrics::MetricsRegistry* registry, std::string target);
  static size_t Hash(absl::string_view name);
  CallMetrics* Insert(absl::string_view full_name, size_t hash);

  std::string target_;
  CallMetricFamilies families_;
  metrics::GaugeFamily* endpoint_in_flight_ = nullptr;
  metrics::CounterFamily* endpoint_errors_ = nullptr;
  metrics::CounterFamily* endpoint_ejections_ = nullptr;
  metrics::GaugeFamily* endpoint_state_ = nullptr;
  std::unique_ptr<CallMetrics> overflow_;
  Mutex mu_;  // Inserts, endpoint_states_.
  size_t entries_ ABSL_GUARDED_BY(mu_) = 0;
  // The live state series by address; expired entries are dropped as
  // others are added (so the map is bounded by the endpoints of the live
  // channels, plus one).
  std::map<std::string, std::weak_ptr<EndpointStateSeries>> endpoint_states_
      ABSL_GUARDED_BY(mu_);
  // Written once each (under mu_), read without it; freed by the destructor.
  std::array<std::atomic<Entry*>, kSlots> slots_{};
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CLIENT_METRICS_H_
