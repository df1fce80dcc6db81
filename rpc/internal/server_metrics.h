// ServerMetrics: a server's per-method call metrics (call_metrics.h) and
// its server-wide levels, in the registry of ServerOptions::
// metrics_registry. Internal to rpc/.
//
// Per method: every registered method's series are resolved at Start();
// calls to methods nobody registered count under service and method
// "__unknown__" (one series, whatever names clients send).
//
// Server-wide, read when scraped (summed over every server of the process
// that shares the registry; no labels unless said):
//   bevrpc_server_connections                open connections
//   bevrpc_server_calls_queued               calls waiting for a worker
//   bevrpc_server_memory_bytes               memory budget in use
//   bevrpc_server_memory_limit_bytes         max_server_memory_bytes (0: none)
//   bevrpc_server_worker_threads{state="busy"|"idle"}
//   bevrpc_server_rate_limited_read_bytes_total     bytes read under the
//   bevrpc_server_rate_limited_written_bytes_total  server_rate_limit group
// plus the process metrics (rpc/metrics/process_metrics.h).
//
// Threading: For() and Unknown() are thread-safe; AddLevels() and the
// destructor from the server's controlling thread.
#ifndef BEVRPC_RPC_INTERNAL_SERVER_METRICS_H_
#define BEVRPC_RPC_INTERNAL_SERVER_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/internal/call_metrics.h"
#include "rpc/method.h"
#include "rpc/metrics/metrics.h"

namespace bevrpc::internal {

// A server's levels, read (on a scraping thread) while it is registered
// with ServerMetrics::AddLevels(). Thread-safe.
class ServerLevels {
 public:
  virtual ~ServerLevels() = default;
  virtual uint64_t connections() const = 0;
  virtual uint64_t calls_queued() const = 0;
  virtual uint64_t memory_bytes() const = 0;
  virtual uint64_t memory_limit_bytes() const = 0;
  virtual uint64_t workers_busy() const = 0;
  virtual uint64_t workers_idle() const = 0;
  // Bytes through the server-wide rate-limit group (0 without one).
  virtual uint64_t rate_limited_read_bytes() const = 0;
  virtual uint64_t rate_limited_written_bytes() const = 0;
};

class ServerLevelSet;

class ServerMetrics {
 public:
  // Registers the families in `registry` (borrowed; must outlive this) and
  // resolves the series of every method in `methods` (borrowed; not
  // changed while this lives: its MethodDescs are the keys of For()).
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      metrics::MetricsRegistry* registry,
      const absl::flat_hash_map<std::string, MethodDesc>& methods);
  ~ServerMetrics();

  // A registered method's metrics (never null for a method of `methods`).
  CallMetrics* For(const MethodDesc* method) const {
    auto it = by_method_.find(method);
    return it == by_method_.end() ? unknown_.get() : it->second.get();
  }
  // By name: a registered method's, else Unknown().
  CallMetrics* ForName(absl::string_view full_name) const;
  CallMetrics* Unknown() const { return unknown_.get(); }

  // Adds `levels` (borrowed; until this is destroyed) to the server-wide
  // series of the registry. Once.
  absl::Status AddLevels(const ServerLevels* levels);
  // Takes them out again (a read in progress is waited for); idempotent.
  // The destructor does it too.
  void RemoveLevels();

 private:
  ServerMetrics() = default;

  metrics::MetricsRegistry* registry_ = nullptr;
  const absl::flat_hash_map<std::string, MethodDesc>* methods_ = nullptr;
  absl::flat_hash_map<const MethodDesc*, std::unique_ptr<CallMetrics>>
      by_method_;
  std::unique_ptr<CallMetrics> unknown_;
  ServerLevelSet* level_set_ = nullptr;  // Acquired by AddLevels().
  const ServerLevels* levels_ = nullptr;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_SERVER_METRICS_H_
