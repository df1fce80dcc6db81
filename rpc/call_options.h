// Per-call settings and metadata, shared by clients and servers.
//
//   CallOptions options;
//   options.timeout = absl::Milliseconds(200);
//   options.metadata["x-request-id"] = "42";
//   channel->Call("bevrpc.echo.Echo/Echo", request, &response, options);
//
// Inside a handler, outgoing calls made on the incoming call's behalf
// inherit its deadline and cancellation with one line (docs/resilience.md,
// "Deadlines and cancellation across hops"):
//
//   void Lookup(ServerContext& ctx, const LookupRequest& req,
//               LookupResponse* resp, Completion done) {
//     CallOptions options = CallOptions::From(ctx);   // the one line
//     options.timeout = absl::Milliseconds(50);       // may only shorten
//     backend->CallAsync(kGet, get_req, get_resp, options,
//                        [...](absl::Status s) { ... });
//   }
//
// Plain values; thread-compatible. Copies share `parent`.
#ifndef BEVRPC_RPC_CALL_OPTIONS_H_
#define BEVRPC_RPC_CALL_OPTIONS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "rpc/trace/trace_context.h"

namespace bevrpc {

class ServerContext;
namespace internal {
class Cancellation;
}  // namespace internal
namespace trace {
class RpczRecord;
}  // namespace trace

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
  // The incoming call this call is made for; set by From(ctx), copied with
  // the options. Then (Channel::CallAsync()/Call() and ClientStream alike):
  //  - the deadline is the earlier of `timeout` and the incoming call's
  //    deadline (the downstream server is told what is left of it);
  //  - when the incoming call ends without answering (its client cancelled,
  //    its deadline passed, its connection closed, the server shut down),
  //    this call is cancelled: the downstream server is told to stop and
  //    `done` gets CANCELLED, or DEADLINE_EXCEEDED when the deadline was
  //    the cause;
  //  - a call started after that fails at once, never sent, with the same
  //    code (CANCELLED, or DEADLINE_EXCEEDED once the deadline has passed).
  // The incoming call finishing normally cancels nothing: a handler may
  // answer and leave calls running, which still end by the inherited
  // deadline. These options (and the incoming call's state they share) stay
  // valid after the handler finished; only From(ctx) needs the live
  // context. Calls without a parent pay nothing for the feature.
  // Default: null (no parent).
  std::shared_ptr<internal::Cancellation> parent;
  // The span this call is made under (W3C Trace Context,
  // rpc/trace/trace_context.h); set by From(ctx) to the incoming call's
  // span. The call's `traceparent` request header is the caller's own if
  // `metadata` has one, else a new span under this one. Without either
  // (the default) no header is sent and the server starts a new trace: the
  // first hop creates it, and plain calls pay nothing. The header is also
  // left out when it would push the metadata over max_metadata_bytes.
  // Default: none.
  trace::TraceContext trace;
  // Set by From(ctx) when the incoming call is followed by /rpcz
  // (ServerOptions::rpcz): the call is listed among its downstream calls
  // (calls with a `parent` only). Default: null.
  std::shared_ptr<trace::RpczRecord> rpcz;

  // Options whose `parent`, `trace` and `rpcz` are `ctx`'s incoming call's,
  // every other field at its default. Call while the handler still holds
  // the call (before its Completion finishes); thread-safe.
  static CallOptions From(const ServerContext& ctx);
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_CALL_OPTIONS_H_
