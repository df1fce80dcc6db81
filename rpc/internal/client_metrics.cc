#include "rpc/internal/client_metrics.h"

#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>


namespace bevrpc::internal {
namespace {

metrics::MetricSpec EndpointSpec(std::string name, std::string help,
                                 std::string unit = "") {
  metrics::MetricSpec spec;
  spec.name = std::move(name);
  spec.help = std::move(help);
  spec.unit = std::move(unit);
  spec.label_names = {"target", "endpoint"};
  return spec;
}

constexpr balancing::EndpointState kStates[] = {
    balancing::EndpointState::kIdle,
    balancing::EndpointState::kConnecting,
    balancing::EndpointState::kReady,
    balancing::EndpointState::kTransientFailure,
    balancing::EndpointState::kEjected,
};

}  // namespace

// The state series of one (target, address), one callback per state, and
// the healths of the channels' endpoints with that address, earliest first.
// Lock order: a family's lock (held while a callback runs), then mu.
struct EndpointStateSeries {
  ~EndpointStateSeries() {
    // Removed (under the family's lock) before the healths go: no callback
    // runs after this.
    handles.clear();
  }
  Mutex mu;
  std::vector<std::shared_ptr<const balancing::EndpointHealth>> healths
      ABSL_GUARDED_BY(mu);
  std::vector<metrics::CallbackHandle> handles;  // Set once, at creation.

  double Is(balancing::EndpointState s) {
    MutexLock lock(&mu);
    if (healths.empty()) return 0;
    return healths.front()->state() == s ? 1.0 : 0.0;
  }
};

EndpointMetrics::~EndpointMetrics() {
  if (state == nullptr) return;
  MutexLock lock(&state->mu);
  auto& healths = state->healths;
  for (auto it = healths.begin(); it != healths.end(); ++it) {
    if (*it == health) {
      healths.erase(it);
      break;
    }
  }
}

namespace {

// Drops the entries of a map of weak pointers whose objects are gone.
template <typename Key, typename T>
void EraseExpired(std::map<Key, std::weak_ptr<T>>* live) {
  for (auto i = live->begin(); i != live->end();) {
    i = i->second.expired() ? live->erase(i) : std::next(i);
  }
}

// The live ClientMetrics by registry and target. A registry outlives its
// ClientMetrics, so a live entry's registry address cannot have been
// reused; expired entries are dropped as others are added.
struct SharedTables {
  Mutex mu;
  std::map<std::pair<const metrics::MetricsRegistry*, std::string>,
           std::weak_ptr<ClientMetrics>>
      live ABSL_GUARDED_BY(mu);
};

SharedTables& Shared() {
  static SharedTables* tables = new SharedTables();
  return *tables;
}

}  // namespace

absl::StatusOr<std::shared_ptr<ClientMetrics>> ClientMetrics::Create(
    metrics::MetricsRegistry* registry, std::string target) {
  SharedTables& shared = Shared();
  MutexLock lock(&shared.mu);
  auto key = std::make_pair(registry, target);
  auto it = shared.live.find(key);
  if (it != shared.live.end()) {
    if (std::shared_ptr<ClientMetrics> m = it->second.lock()) return m;
  }
  absl::StatusOr<std::shared_ptr<ClientMetrics>> made =
      Make(registry, std::move(target));
  if (!made.ok()) return made.status();
  EraseExpired(&shared.live);
  shared.live[key] = *made;
  return made;
}

absl::StatusOr<std::shared_ptr<ClientMetrics>> ClientMetrics::Make(
    metrics::MetricsRegistry* registry, std::string target) {
  absl::StatusOr<CallMetricFamilies> families =
      CallMetricFamilies::Register(registry, CallMetricFamilies::kClient);
  if (!families.ok()) return families.status();
  std::shared_ptr<ClientMetrics> m(new ClientMetrics());
  m->target_ = std::move(target);
  m->families_ = *families;
  auto in_flight = registry->RegisterGaugeFamily(EndpointSpec(
      "bevrpc_client_endpoint_in_flight",
      "Calls on the endpoint: sent and not answered, or waiting to be sent."));
  if (!in_flight.ok()) return in_flight.status();
  m->endpoint_in_flight_ = *in_flight;
  auto errors = registry->RegisterCounterFamily(EndpointSpec(
      "bevrpc_client_endpoint_errors",
      "Calls (attempts) that ended on the endpoint with a status other than "
      "OK."));
  if (!errors.ok()) return errors.status();
  m->endpoint_errors_ = *errors;
  auto ejections = registry->RegisterCounterFamily(EndpointSpec(
      "bevrpc_client_endpoint_ejections",
      "Outlier ejections of the endpoint."));
  if (!ejections.ok()) return ejections.status();
  m->endpoint_ejections_ = *ejections;
  metrics::MetricSpec state = EndpointSpec(
      "bevrpc_client_endpoint_state",
      "1 for the endpoint's connectivity state, 0 for the others.");
  state.label_names.push_back("state");
  auto state_family = registry->RegisterGaugeFamily(state);
  if (!state_family.ok()) return state_family.status();
  m->endpoint_state_ = *state_family;
  m->overflow_ = std::make_unique<CallMetrics>(m->families_, kOverflowLabel,
                                               kOverflowLabel);
  return m;
}

ClientMetrics::~ClientMetrics() {
  for (auto& slot : slots_) delete slot.load(std::memory_order_relaxed);
}

size_t ClientMetrics::Hash(absl::string_view name) {
  // Every call hashes its method name, so this reads three words rather
  // than every byte: the head, the middle and the tail, where the names of
  // one program's methods differ ("pkg.Kv/Get", "pkg.Kv/Put",
  // "other.Kv/Get"), and the length. Names that collide cost probes, never
  // a wrong answer (For() compares the whole name). Names come from the
  // program's own stubs, not from peers.
  const char* p = name.data();
  const size_t n = name.size();
  uint64_t h = n * 0x9e3779b97f4a7c15ull;
  if (n >= 8) {
    uint64_t head, middle, tail;  // Fixed-size loads: plain moves.
    std::memcpy(&head, p, 8);
    std::memcpy(&middle, p + (n - 8) / 2, 8);
    std::memcpy(&tail, p + n - 8, 8);
    h ^= head * 0xc2b2ae3d27d4eb4full;
    h ^= middle * 0x27d4eb2f165667c5ull;
    h ^= tail * 0x165667b19e3779f9ull;
  } else {
    for (size_t i = 0; i < n; ++i) {
      h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ull;
    }
  }
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return static_cast<size_t>(h);
}

CallMetrics* ClientMetrics::Insert(absl::string_view full_name, size_t hash) {
  MutexLock lock(&mu_);
  size_t i = hash & kMask;
  for (size_t n = 0; n < kSlots; i = (i + 1) & kMask, ++n) {
    const Entry* e = slots_[i].load(std::memory_order_relaxed);
    if (e == nullptr) break;
    // Another thread inserted it meanwhile.
    if (e->hash == hash && e->name == full_name) return e->metrics.get();
  }
  if (entries_ >= kMaxMethods) return overflow_.get();
  auto entry = std::make_unique<Entry>();
  entry->name = std::string(full_name);
  entry->hash = hash;
  absl::string_view service, method;
  SplitMethodName(full_name, &service, &method);
  entry->metrics = std::make_unique<CallMetrics>(families_, service, method);
  ++entries_;
  CallMetrics* result = entry->metrics.get();
  // Published whole: readers see the name and series with the pointer.
  slots_[i].store(entry.release(), std::memory_order_release);
  return result;
}

std::shared_ptr<EndpointMetrics> ClientMetrics::ForEndpoint(
    const std::string& address,
    std::shared_ptr<const balancing::EndpointHealth> health) {
  auto m = std::make_shared<EndpointMetrics>();
  m->owner = shared_from_this();
  m->in_flight = endpoint_in_flight_->Get({target_, address});
  m->errors = endpoint_errors_->Get({target_, address});
  m->ejections = endpoint_ejections_->Get({target_, address});
  m->health = std::move(health);
  MutexLock lock(&mu_);
  auto it = endpoint_states_.find(address);
  if (it != endpoint_states_.end()) m->state = it->second.lock();
  if (m->state == nullptr) {
    EraseExpired(&endpoint_states_);
    auto series = std::make_shared<EndpointStateSeries>();
    EndpointStateSeries* raw = series.get();
    for (balancing::EndpointState s : kStates) {
      // The callbacks go before the series does (its destructor).
      auto handle = endpoint_state_->AddCallback(
          {target_, address, std::string(balancing::EndpointStateName(s))},
          [raw, s] { return raw->Is(s); });
      if (handle.ok()) series->handles.push_back(*std::move(handle));
    }
    endpoint_states_[address] = series;
    m->state = std::move(series);
  }
  MutexLock state_lock(&m->state->mu);
  m->state->healths.push_back(m->health);
  return m;
}

}  // namespace bevrpc::internal
