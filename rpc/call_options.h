// Per-call settings and metadata, shared by clients and servers.
//
//   CallOptions options;
//   options.timeout = absl::Milliseconds(200);
//   options.metadata["x-request-id"] = "42";
//   channel->Call("bevrpc.echo.Echo/Echo", request, &response, options);
//
// Plain values; thread-compatible.
#ifndef BEVRPC_RPC_CALL_OPTIONS_H_
#define BEVRPC_RPC_CALL_OPTIONS_H_

#include <map>
#include <string>

#include "absl/time/time.h"

namespace bevrpc {

// Request headers, a stream's initial response headers, or response
// trailers (docs/protocol.md, "Metadata"):
//  - keys: non-empty, only lower-case letters, digits, '-', '_' and '.'
//    ([0-9a-z_.-], gRPC's rule); "X-Id" or "caf\xe9" fails the call that
//    carries it, never the connection;
//  - values: any bytes, delivered unchanged. Keys ending in "-bin" carry
//    binary values by gRPC's convention; other values should be printable
//    ASCII if they may reach a gRPC peer (not enforced);
//  - size: all entries together within FrameLimits::max_metadata_bytes
//    (8 KiB by default; key + value + 32 bytes each).
using Metadata = std::map<std::string, std::string>;

struct CallOptions {
  // The call fails with DEADLINE_EXCEEDED after this long; the server is told
  // the remaining budget. Default: no deadline.
  absl::Duration timeout = absl::InfiniteDuration();
  // Request headers sent with the call; rules above. A bad key fails the
  // call with INVALID_ARGUMENT before anything is sent, oversized headers
  // with RESOURCE_EXHAUSTED. Default: none.
  Metadata metadata;
  // ring_hash: the key whose owner serves the call (a user id, a shard
  // key). Calls with the same key go to the same endpoint while it is
  // usable. Other balancers ignore it. Default: empty (hashes as "").
  std::string hash_key;
  // What a call does when the target has no endpoints (an empty list):
  // false fails it at once with UNAVAILABLE; true waits, within its
  // deadline, for endpoints to appear. Before the target's first list
  // every call waits. Default: false (gRPC's default).
  bool wait_for_ready = false;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_CALL_OPTIONS_H_
