#include "rpc/internal/server_metrics.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "rpc/metrics/process_metrics.h"
#include "transport/sync.h"

namespace bevrpc::internal {

// The server-wide series of one registry, summing every server that shares
// it (two servers in one process must not fight over one unlabelled
// series). Shared by those servers' ServerMetrics; the last one to go
// removes the series. Thread-safe.
class ServerLevelSet {
 public:
  // The registry's set, created (and its series added) if it has none;
  // each Acquire() is matched by one Release().
  static absl::StatusOr<ServerLevelSet*> Acquire(
      metrics::MetricsRegistry* registry);
  // The last Release() of a registry's set removes its series and frees it.
  static void Release(ServerLevelSet* set);

  void Add(const ServerLevels* levels) {
    MutexLock lock(&mu_);
    servers_.push_back(levels);
  }
  void Remove(const ServerLevels* levels) {
    MutexLock lock(&mu_);
    servers_.erase(std::remove(servers_.begin(), servers_.end(), levels),
                   servers_.end());
  }

 private:
  using Field = uint64_t (ServerLevels::*)() const;
  // Runs on the scraping thread with a family's lock held: takes only mu_,
  // never calls into the registry.
  double Sum(Field field) const {
    MutexLock lock(&mu_);
    uint64_t sum = 0;
    for (const ServerLevels* s : servers_) sum += (s->*field)();
    return static_cast<double>(sum);
  }
  absl::Status AddSeries(metrics::MetricsRegistry* registry);

  // Sets are made, counted and freed under SetsMu(): a server starting
  // while the last one of its registry stops never finds that one's series
  // still in place.
  static Mutex& SetsMu() {
    static Mutex* mu = new Mutex();
    return *mu;
  }
  struct Entry {
    ServerLevelSet* set;
    int users;
  };
  static absl::flat_hash_map<metrics::MetricsRegistry*, Entry>& Sets()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(SetsMu()) {
    static auto* sets =
        new absl::flat_hash_map<metrics::MetricsRegistry*, Entry>();
    return *sets;
  }

  metrics::MetricsRegistry* registry_ = nullptr;
  mutable Mutex mu_;
  std::vector<const ServerLevels*> servers_ ABSL_GUARDED_BY(mu_);
  // Last: removed (waiting for a read in progress) before the rest goes.
  std::vector<metrics::CallbackHandle> handles_;
};

absl::StatusOr<ServerLevelSet*> ServerLevelSet::Acquire(
    metrics::MetricsRegistry* registry) {
  MutexLock lock(&SetsMu());
  auto& sets = Sets();
  auto it = sets.find(registry);
  if (it != sets.end()) {
    ++it->second.users;
    return it->second.set;
  }
  auto set = std::make_unique<ServerLevelSet>();
  set->registry_ = registry;
  absl::Status s = set->AddSeries(registry);
  if (!s.ok()) return s;
  ServerLevelSet* raw = set.release();
  sets.emplace(registry, Entry{raw, 1});
  return raw;
}

void ServerLevelSet::Release(ServerLevelSet* set) {
  MutexLock lock(&SetsMu());
  auto it = Sets().find(set->registry_);
  if (--it->second.users != 0) return;
  Sets().erase(it);
  delete set;  // Its handles remove the series.
}

absl::Status ServerLevelSet::AddSeries(metrics::MetricsRegistry* registry) {
  struct GaugeDef {
    const char* name;
    const char* help;
    const char* unit;
    Field field;
  };
  static constexpr GaugeDef kGauges[] = {
      {"bevrpc_server_connections", "Open connections.", "",
       &ServerLevels::connections},
      {"bevrpc_server_calls_queued",
       "Calls waiting for a worker thread (sync handlers).", "",
       &ServerLevels::calls_queued},
      {"bevrpc_server_memory_bytes",
       "Memory budget in use: requests read and not finished plus unsent "
       "output.",
       "bytes", &ServerLevels::memory_bytes},
      {"bevrpc_server_memory_limit_bytes",
       "The memory budget, max_server_memory_bytes (0: unlimited).", "bytes",
       &ServerLevels::memory_limit_bytes},
  };
  for (const GaugeDef& def : kGauges) {
    metrics::MetricSpec spec;
    spec.name = def.name;
    spec.help = def.help;
    spec.unit = def.unit;
    auto family = registry->RegisterGaugeFamily(spec);
    if (!family.ok()) return family.status();
    const Field field = def.field;
    auto handle =
        (*family)->AddCallback({}, [this, field] { return Sum(field); });
    if (!handle.ok()) return handle.status();
    handles_.push_back(*std::move(handle));
  }
  metrics::MetricSpec workers;
  workers.name = "bevrpc_server_worker_threads";
  workers.help = "Worker threads running a handler (busy) or waiting (idle).";
  workers.label_names = {"state"};
  auto worker_family = registry->RegisterGaugeFamily(workers);
  if (!worker_family.ok()) return worker_family.status();
  for (auto [state, field] :
       {std::pair<const char*, Field>{"busy", &ServerLevels::workers_busy},
        std::pair<const char*, Field>{"idle", &ServerLevels::workers_idle}}) {
    auto handle = (*worker_family)
                      ->AddCallback({state}, [this, field = field] {
                        return Sum(field);
                      });
    if (!handle.ok()) return handle.status();
    handles_.push_back(*std::move(handle));
  }
  struct CounterDef {
    const char* name;
    const char* help;
    Field field;
  };
  static constexpr CounterDef kCounters[] = {
      {"bevrpc_server_rate_limited_read_bytes",
       "Bytes read through the server-wide rate limit (server_rate_limit).",
       &ServerLevels::rate_limited_read_bytes},
      {"bevrpc_server_rate_limited_written_bytes",
       "Bytes written through the server-wide rate limit (server_rate_limit).",
       &ServerLevels::rate_limited_written_bytes},
  };
  for (const CounterDef& def : kCounters) {
    metrics::MetricSpec spec;
    spec.name = def.name;
    spec.help = def.help;
    spec.unit = "bytes";
    auto family = registry->RegisterCounterFamily(spec);
    if (!family.ok()) return family.status();
    const Field field = def.field;
    auto handle =
        (*family)->AddCallback({}, [this, field] { return Sum(field); });
    if (!handle.ok()) return handle.status();
    handles_.push_back(*std::move(handle));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    metrics::MetricsRegistry* registry,
    const absl::flat_hash_map<std::string, MethodDesc>& methods) {
  absl::StatusOr<CallMetricFamilies> families =
      CallMetricFamilies::Register(registry, CallMetricFamilies::kServer);
  if (!families.ok()) return families.status();
  absl::Status process = metrics::RegisterProcessMetrics(registry);
  if (!process.ok()) return process;
  std::unique_ptr<ServerMetrics> m(new ServerMetrics());
  m->registry_ = registry;
  m->methods_ = &methods;
  for (const auto& [name, desc] : methods) {
    absl::string_view service, method;
    SplitMethodName(name, &service, &method);
    m->by_method_.emplace(&desc,
                          std::make_unique<CallMetrics>(*families, service, method));
  }
  m->unknown_ =
      std::make_unique<CallMetrics>(*families, kUnknownLabel, kUnknownLabel);
  return m;
}

ServerMetrics::~ServerMetrics() { RemoveLevels(); }

void ServerMetrics::RemoveLevels() {
  if (level_set_ == nullptr) return;
  level_set_->Remove(levels_);
  ServerLevelSet::Release(level_set_);
  level_set_ = nullptr;
  levels_ = nullptr;
}

CallMetrics* ServerMetrics::ForName(absl::string_view full_name) const {
  auto it = methods_->find(full_name);
  return it == methods_->end() ? unknown_.get() : For(&it->second);
}

absl::Status ServerMetrics::AddLevels(const ServerLevels* levels) {
  absl::StatusOr<ServerLevelSet*> set = ServerLevelSet::Acquire(registry_);
  if (!set.ok()) return set.status();
  level_set_ = *set;
  levels_ = levels;
  level_set_->Add(levels);
  return absl::OkStatus();
}

}  // namespace bevrpc::internal
