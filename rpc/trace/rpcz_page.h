// The /rpcz page: the calls an RpczStore holds, newest first, as an HTML
// table (readable without JavaScript) or, with ?format=json (or an Accept
// header naming application/json), as JSON. ?trace_id=<32 hex> shows one
// trace's calls only; a malformed one is answered with 400.
//
//   server.AddHttpPage("/rpcz", "Recent calls",
//                      [&server](const admin::HttpRequest& request) {
//                        return trace::RenderRpcz(server.rpcz(), request);
//                      });
//
// JSON shape:
//   {"enabled":true,"recorded":12,"held":12,"samples":[{"trace_id":"...",
//    "span_id":"...","parent_span_id":"..." (or ""),"method":"...",
//    "peer":"...","start":"RFC 3339","queued_us":12,"handler_us":340
//    (null if unfinished),"total_us":360,"request_bytes":10,
//    "response_bytes":12,"code":"OK","message":"","sampled":true,
//    "downstream":[{"method":"...","target":"...","span_id":"...",
//    "start":"...","duration_us":200,"code":"OK","message":""}],
//    "downstream_dropped":0}]}
//
// Thread-safe (the store is).
#ifndef BEVRPC_RPC_TRACE_RPCZ_PAGE_H_
#define BEVRPC_RPC_TRACE_RPCZ_PAGE_H_

#include "rpc/admin/http_page.h"
#include "rpc/trace/rpcz_store.h"

namespace bevrpc::trace {

admin::HttpResponse RenderRpcz(const RpczStore& store,
                               const admin::HttpRequest& request);

}  // namespace bevrpc::trace

#endif  // BEVRPC_RPC_TRACE_RPCZ_PAGE_H_
