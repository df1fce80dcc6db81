// The server's built-in HTTP pages: /metrics (the metrics registry as
// Prometheus text 0.0.4, or JSON), /health (200 "SERVING", 503 while
// draining), /options (the effective ServerOptions) and /connections (one
// row per open connection). Each has a JSON variant (?format=json).
// Internal to rpc/: the Server adds them at construction.
//
// Threading: the handlers run on any I/O thread; they read only
// thread-safe state (atomics, the connection table, the registry) and the
// options, which are immutable once serving.
#ifndef BEVRPC_RPC_INTERNAL_ADMIN_PAGES_H_
#define BEVRPC_RPC_INTERNAL_ADMIN_PAGES_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rpc/admin/page_registry.h"
#include "rpc/internal/connection_table.h"
#include "rpc/server_options.h"

namespace bevrpc::internal {

struct ServerShared;

// Adds the four pages to shared->pages. `shared` and `draining` must
// outlive the pages; `draining` is thread-safe.
absl::Status AddBuiltinPages(ServerShared* shared,
                             std::function<bool()> draining);

// The page bodies, for tests.
std::string RenderOptions(const ServerOptions& options, bool json);
std::string RenderConnections(const std::vector<ConnectionTable::Row>& rows,
                              const ServerOptions& options, absl::Time now,
                              bool json);

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_ADMIN_PAGES_H_
