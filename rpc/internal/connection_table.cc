#include "rpc/internal/connection_table.h"

#include <algorithm>

namespace bevrpc::internal {

const char* ConnectionProtocolName(ConnectionProtocol protocol) {
  switch (protocol) {
    case ConnectionProtocol::kRpc:
      return "rpc";
    case ConnectionProtocol::kHttp:
      return "http";
    default:
      return "unknown";
  }
}

void ConnectionTable::Add(const ConnectionStats* stats) {
  MutexLock lock(&mu_);
  stats_.insert(stats);
}

void ConnectionTable::Remove(const ConnectionStats* stats) {
  MutexLock lock(&mu_);
  stats_.erase(stats);
}

size_t ConnectionTable::size() const {
  MutexLock lock(&mu_);
  return stats_.size();
}

std::vector<ConnectionTable::Row> ConnectionTable::Snapshot() const {
  std::vector<Row> rows;
  {
    MutexLock lock(&mu_);
    rows.reserve(stats_.size());
    for (const ConnectionStats* s : stats_) {
      rows.push_back(Row{
          s->peer, s->opened_at,
          static_cast<ConnectionProtocol>(
              s->protocol.load(std::memory_order_relaxed)),
          s->bytes_in.load(std::memory_order_relaxed),
          s->bytes_out.load(std::memory_order_relaxed),
          s->calls_open.load(std::memory_order_relaxed),
          s->http_requests.load(std::memory_order_relaxed)});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.opened_at != b.opened_at ? a.opened_at < b.opened_at
                                      : a.peer < b.peer;
  });
  return rows;
}

}  // namespace bevrpc::internal
