// Trace context and /rpcz recording for calls (rpc/trace/). Internal to
// rpc/:
//  - clients: EnsureTraceparent() gives an outgoing call made under a span
//    (CallOptions::trace, set by From(ctx)) a `traceparent` header naming a
//    child span, unless the caller set one;
//  - servers: each ServerCall holds a ServerCallTrace, which reads the
//    incoming header (or starts a trace), exposes the call's span
//    (ServerContext::trace()) and records the call in the server's
//    RpczStore when it ends.
//
//   // Channel::StartCall():
//   EnsureTraceparent(&call->headers, options.trace, limits.max_metadata_bytes);
#ifndef BEVRPC_RPC_INTERNAL_CALL_TRACE_H_
#define BEVRPC_RPC_INTERNAL_CALL_TRACE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rpc/call_options.h"
#include "rpc/trace/rpcz_store.h"
#include "rpc/trace/trace_context.h"

namespace bevrpc::internal {

// Adds `traceparent` to `headers` when they have none and `parent` is
// valid: a child span of `parent`, and only if it fits `max_metadata_bytes`
// with the headers already there (the header is left out rather than fail
// the call). Without a parent nothing is added: the server starts the
// trace, so plain calls stay allocation-free. Returns the span the headers
// now name (the caller's own value, parsed, if it set one; not valid if
// that does not parse or nothing was added). One string, no other
// allocation.
trace::TraceContext EnsureTraceparent(Metadata* headers,
                                      const trace::TraceContext& parent,
                                      size_t max_metadata_bytes);

// A server call's span and /rpcz record. Begin() and End() on the call's
// loop; HandlerStarted() on the thread that runs the handler.
class ServerCallTrace {
 public:
  // A call arrives (its request read at `arrived`, MonotonicNow()): its
  // span is a child of the caller's `traceparent` in `metadata`, or a new
  // trace when there is none or it does not parse (never an error). With a
  // store that samples it, the call is followed from now on.
  // `request_bytes`: its REQUEST payload.
  void Begin(trace::RpczStore* store, const Metadata& metadata,
             absl::Duration arrived, uint64_t request_bytes);
  uint64_t request_bytes() const { return request_bytes_; }

  const trace::TraceContext& context() const { return context_; }
  // Followed calls only (null otherwise): where outgoing calls made with
  // CallOptions::From(ctx) record themselves.
  const std::shared_ptr<trace::RpczRecord>& record() const { return record_; }

  void HandlerStarted();
  void HandlerEnded();

  // True between Begin() with a store that records and End(): the call
  // wants its times (HandlerStarted(), End()'s `now`).
  bool recording() const { return store_ != nullptr && !ended_; }

  // The call ended with `status` at `now` (MonotonicNow(), read once by the
  // caller for the trace, interceptors and metrics alike): stored if it was
  // followed, or if the store keeps it anyway (failed, slow). Then the call
  // holds nothing.
  void End(const absl::Status& status, const std::string& method,
           const std::string& peer, uint64_t request_bytes,
           uint64_t response_bytes, absl::Duration now);

 private:
  // Null: not recording. Set by Begin(), read by every thread the call's
  // handler runs on until the call is recycled (after its last reference).
  trace::RpczStore* store_ = nullptr;
  bool ended_ = false;  // loop: End() ran.
  trace::TraceContext context_;
  trace::SpanId parent_{};
  std::shared_ptr<trace::RpczRecord> record_;
  absl::Duration arrived_;
  uint64_t request_bytes_ = 0;
  // MonotonicNow() in ns; 0 until then. Atomic: a deadline may end the
  // call on its loop while the handler starts on a worker.
  std::atomic<int64_t> handler_start_ns_{0};
  std::atomic<int64_t> handler_end_ns_{0};
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CALL_TRACE_H_
