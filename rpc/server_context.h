// ServerContext and Completion: what a handler sees of its call.
//
//   void Echo(ServerContext& ctx, const EchoRequest& req, EchoResponse* resp,
//             Completion done) {
//     resp->set_message(req.message());
//     ctx.AddTrailer("served-by", "echo");
//     std::move(done).Finish(absl::OkStatus());
//   }
//
// Threading: deadline(), metadata(), method(), peer(), peer_identity(),
// trace() and
// IsCancelled() are thread-safe. AddTrailer() is for the handler, before it finishes the call.
// OnCancel(), RunAfter() and RunOnWorkerPool() may be called from any
// thread. SetConnectionRateLimitGroup() only on the call's I/O loop thread.
#ifndef BEVRPC_RPC_SERVER_CONTEXT_H_
#define BEVRPC_RPC_SERVER_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rpc/call_options.h"
#include "rpc/internal/ref_ptr.h"
#include "rpc/trace/trace_context.h"
#include "transport/peer_identity.h"

namespace bevrpc {

// The client's verified TLS certificate (transport/peer_identity.h).
using PeerIdentity = transport::PeerIdentity;

class ServerStream;
namespace transport {
class RateLimitGroup;
}  // namespace transport
namespace internal {
class ServerCall;
}  // namespace internal

class ServerContext {
 public:
  // When the caller stops waiting; absl::InfiniteFuture() if never.
  // Outgoing calls inherit it, and the call's cancellation, with
  // `CallOptions::From(ctx)` (rpc/call_options.h).
  absl::Time deadline() const;
  // Request headers.
  const Metadata& metadata() const;
  // "package.Service/Method".
  const std::string& method() const;
  // The client's address, e.g. "127.0.0.1:53122".
  const std::string& peer() const;
  // The client's verified certificate: set on a TLS connection whose
  // client presented one (mutual TLS); null otherwise. Valid for as long
  // as the call.
  const PeerIdentity* peer_identity() const;
  // The authenticated caller, as a server interceptor set it
  // (rpc/interceptor.h): the bearer token's name with the token
  // interceptor (rpc/auth/bearer_token.h); "" when none did.
  const std::string& principal() const;
  // This call's span (W3C Trace Context): the trace of the caller's
  // `traceparent` header with a span id of its own, or a new trace when the
  // header is missing or malformed (the call goes on regardless). Outgoing
  // calls made with CallOptions::From(*this) carry a child of it. Put
  // trace().TraceIdHex() in log lines to follow a request across processes.
  const trace::TraceContext& trace() const;

  // Adds a response trailer. Call before finishing the call. Keys must be
  // non-empty and only [0-9a-z_.-] (lower-case; "-bin" by convention for
  // binary values); values are any bytes and arrive unchanged. All trailers
  // together must fit FrameLimits::max_metadata_bytes (8 KiB by default;
  // key + value + 32 bytes each). Otherwise the call fails with INTERNAL
  // (a bad key) or RESOURCE_EXHAUSTED (too big) instead of the handler's
  // status, no trailer is sent, and other calls are not affected. Rules:
  // docs/protocol.md, "Metadata".
  void AddTrailer(std::string key, std::string value);
  // Adds an initial response header, sent (HEADERS frame) before the
  // call's first message or its response: for unary calls, just before
  // the response (the client sees them with Call(..., &headers), the
  // generated stubs' `headers` argument, or `bevrpc call -v`). On a stream,
  // call before the first Write(). Rules as for trailers: a bad key
  // (INTERNAL) or oversized headers (RESOURCE_EXHAUSTED) end the call when
  // they would be sent. Any thread.
  void AddHeader(std::string key, std::string value);

  // True once the call can no longer be answered: the client cancelled, the
  // deadline passed, the connection closed or the server shut down.
  bool IsCancelled() const;
  // Runs `callback` once on the call's I/O loop when the call is cancelled
  // (at once, from the loop, if it already is). Not run if the call finishes
  // normally first. Replaces an earlier callback: there is one, for the
  // handler. Outgoing calls made with CallOptions::From(*this) are
  // cancelled with the call through a registry of their own
  // (rpc/call_options.h), which neither uses nor replaces this callback.
  void OnCancel(absl::AnyInvocable<void()> callback);

  // Runs `fn` on the call's I/O loop after `delay`, unless the call ends
  // first (then `fn` is destroyed unrun). For handlers that wait without
  // blocking a thread.
  void RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn);

  // Runs `fn` on the server's worker pool, where it may block. Skipped if
  // the call has ended by the time a worker is free; if its deadline has
  // passed by then, the call fails with DEADLINE_EXCEEDED instead. This is
  // how a callback-flavour handler hands blocking work off the I/O loop.
  void RunOnWorkerPool(absl::AnyInvocable<void()> fn);

  // For interceptors that limit bytes per group of callers (per-tenant
  // byte rates, rpc/tenant/tenant_limits.h): puts the call's connection in
  // `group`, a byte-rate limit shared by every connection put in it
  // (transport/rate_limit.h). A connection is in at most one group, and
  // groups do not nest: it leaves the server-wide group
  // (ServerOptions::server_rate_limit), whose limit then no longer applies
  // to it; its own per_connection_rate_limit still does.
  //
  // The first group set on a connection keeps it for the connection's
  // life: setting the same one again is a cheap no-op (OK), another one is
  // refused with FAILED_PRECONDITION and changes nothing. The move happens
  // on the loop's next turn, once the current read callback has returned;
  // the calls admitted until then (this one included) start their handlers
  // only after it, so their output is limited too. What the connection
  // sent and read before (other calls' answers included) was not.
  // Connections without a socket (in-process pairs) stay unlimited.
  //
  // Call on the call's I/O loop thread only: from a server interceptor's
  // OnCallStart, or a callback handler before it returns (else
  // FAILED_PRECONDITION). `group` is borrowed and must outlive every
  // connection of the server, e.g. be owned by an interceptor (the server
  // holds its interceptors until it is destroyed, after its last
  // connection closed), and its refill loop must live as long.
  absl::Status SetConnectionRateLimitGroup(
      const transport::RateLimitGroup& group);

 private:
  friend class internal::ServerCall;
  friend class ServerStream;
  friend struct CallOptions;  // From(ctx) reaches the call's ChildScope().
  explicit ServerContext(internal::ServerCall* call) : call_(call) {}
  internal::ServerCall* call_;
};

// Finishes one call. Move-only; Finish() exactly once, from any thread. A
// Completion destroyed without Finish() fails the call with INTERNAL, so a
// handler that loses its completion does not leave the client hanging.
// A result that arrives after the call was cancelled or timed out is
// dropped.
class Completion {
 public:
  Completion() = default;
  explicit Completion(internal::RefPtr<internal::ServerCall> call);
  Completion(Completion&& other) noexcept;
  Completion& operator=(Completion&& other);
  ~Completion();

  // Sends the response (status OK) or the error. The response message must
  // be filled before this.
  void Finish(absl::Status status) &&;

 private:
  internal::RefPtr<internal::ServerCall> call_;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_SERVER_CONTEXT_H_
