// ConnectionTable: the open connections of one server, for the
// /connections page. Each session owns a ConnectionStats, registers it
// while it lives, and updates its counters on its own loop thread (relaxed
// stores: one writer each); a page on any loop reads them all under the
// table's lock, which also keeps a session from unregistering (and freeing
// its stats) during the read.
//
//   table.Add(&stats_);            // session constructor
//   stats_.bytes_in.store(n, std::memory_order_relaxed);
//   for (const auto& row : table.Snapshot()) ...
//   table.Remove(&stats_);         // session destructor
//
// Thread-safe.
#ifndef BEVRPC_RPC_INTERNAL_CONNECTION_TABLE_H_
#define BEVRPC_RPC_INTERNAL_CONNECTION_TABLE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "transport/sync.h"

namespace bevrpc::internal {

enum class ConnectionProtocol : int {
  kUnknown = 0,  // No byte read yet (or not enough to tell).
  kRpc = 1,
  kHttp = 2,
};

const char* ConnectionProtocolName(ConnectionProtocol protocol);

struct ConnectionStats {
  ConnectionStats(std::string peer, absl::Time opened_at)
      : peer(std::move(peer)), opened_at(opened_at) {}
  const std::string peer;
  const absl::Time opened_at;
  // Written by the owning session's loop thread only.
  std::atomic<int> protocol{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> calls_open{0};
  std::atomic<uint64_t> http_requests{0};
};

class ConnectionTable {
 public:
  struct Row {
    std::string peer;
    absl::Time opened_at;
    ConnectionProtocol protocol;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t calls_open;
    uint64_t http_requests;
  };

  // `stats` must stay alive until Remove(stats) returns.
  void Add(const ConnectionStats* stats);
  void Remove(const ConnectionStats* stats);
  size_t size() const;
  // Every open connection, oldest first. Bounded by the server's
  // max_connections.
  std::vector<Row> Snapshot() const;

 private:
  mutable Mutex mu_;
  absl::flat_hash_set<const ConnectionStats*> stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CONNECTION_TABLE_H_
