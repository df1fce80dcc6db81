// Interceptors: cross-cutting logic (authentication, authorization,
// per-tenant limits, logging, auditing) that runs around every call without
// being copied into each handler, on the server and on the client (gRPC's
// interceptors, brpc's Interceptor).
//
// Server side: ServerOptions::interceptors is a chain, run in order before
// the handler and in reverse order after the call ends:
//
//   class AuditLog : public bevrpc::ServerInterceptor {
//    public:
//     absl::Status OnCallStart(bevrpc::ServerCallInfo& call,
//                              std::any& state) override {
//       if (call.method == "acme.Admin/Wipe" && call.principal != "root")
//         return absl::PermissionDeniedError("only root may wipe");
//       return absl::OkStatus();
//     }
//     void OnCallEnd(const bevrpc::ServerCallInfo& call, std::any& state,
//                    const absl::Status& status,
//                    absl::Duration latency) override {
//       log_ << call.method << " " << status.code() << "\n";
//     }
//   };
//   options.interceptors.push_back(std::make_shared<AuditLog>());
//
// Every call shape (unary, client/server/bidi streaming) and every handler
// flavour (sync, callback, streaming) goes through the chain the same way:
// it runs once the request has arrived (for streams: the REQUEST frame that
// opens them) and before the handler is started. A non-OK status from
// OnCallStart fails the call with that status (the handler never runs, the
// interceptors after it are not asked); the client sees the status and
// message as given. OnCallEnd runs exactly once for every interceptor whose
// OnCallStart returned OK, whichever way the call ended (answered,
// refused by a later interceptor, cancelled, timed out, connection lost),
// with the status the client was sent (or the reason it ended unanswered)
// and the time since the request was read.
//
// `state` is the interceptor's own per-call slot (empty at OnCallStart; the
// same object at OnCallEnd), e.g. a tenant's counter to give back.
// `principal` is the caller's authenticated identity: an authenticating
// interceptor sets it (the bearer-token interceptor sets the token's
// name), later interceptors and the handler read it
// (ServerContext::principal()).
//
// Client side: ChannelOptions::interceptors, the same shape, around each
// logical call (once per call, not per retry or hedge attempt). OnCallStart
// may add request headers (an auth token, a tenant key) and may refuse the
// call before anything is sent.
//
// Cost: with no interceptor installed nothing is allocated or called. With
// some, a server call keeps one small reusable record (no allocation per
// call in steady state unless `state` holds something large).
//
// Threading: interceptors are shared by every I/O loop: their methods are
// called concurrently from several threads and must be thread-safe. Server
// interceptors run on the call's I/O loop and must not block (no file or
// network I/O; hand slow work elsewhere). Client interceptors run on the
// caller's thread (OnCallStart) and on the channel's I/O loop (OnCallEnd).
// The chain is fixed once the server starts / the channel is created; the
// interceptors are shared_ptr-owned by the options and live as long as the
// server or channel.
#ifndef BEVRPC_RPC_INTERCEPTOR_H_
#define BEVRPC_RPC_INTERCEPTOR_H_

#include <any>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/call_options.h"
#include "rpc/method.h"
#include "rpc/server_context.h"
#include "transport/peer_identity.h"

namespace bevrpc {

// What a server interceptor sees of a call. Valid during the callback only.
struct ServerCallInfo {
  // "package.Service/Method".
  absl::string_view method;
  MethodKind kind = MethodKind::kUnary;
  // Request headers as the client sent them.
  const Metadata* metadata = nullptr;
  // The client's address, e.g. "127.0.0.1:53122".
  absl::string_view peer;
  // The client's verified TLS certificate, or null (no TLS, or no client
  // certificate).
  const transport::PeerIdentity* peer_identity = nullptr;
  // When the caller stops waiting; absl::InfiniteFuture() if never.
  absl::Time deadline = absl::InfiniteFuture();
  // The authenticated caller: empty until an interceptor sets it (in
  // OnCallStart); read by the interceptors after it and by the handler.
  std::string principal;
  // The call's context, e.g. to add a trailer to a refusal
  // (AddTrailer(kRetryPushbackMsKey, ...) tells bevrpc clients when to
  // retry) or a response header, or to put the call's connection in a
  // byte-rate group (SetConnectionRateLimitGroup()).
  ServerContext* context = nullptr;

  // The value of request header `key`, or null.
  const std::string* header(absl::string_view key) const {
    if (metadata == nullptr) return nullptr;
    auto it = metadata->find(std::string(key));
    return it == metadata->end() ? nullptr : &it->second;
  }
};

class ServerInterceptor {
 public:
  virtual ~ServerInterceptor() = default;
  // Before the handler. OK lets the call go on; anything else fails it
  // with that status.
  virtual absl::Status OnCallStart(ServerCallInfo& call, std::any& state) = 0;
  // The call ended (only after OnCallStart returned OK).
  virtual void OnCallEnd(const ServerCallInfo& call, std::any& state,
                         const absl::Status& status, absl::Duration latency) {}
};

using ServerInterceptors = std::vector<std::shared_ptr<ServerInterceptor>>;

// What a client interceptor sees of a call.
struct ClientCallInfo {
  absl::string_view method;
  // The channel's target, e.g. "dns:///kv.local:7000".
  absl::string_view target;
  // The request headers to be sent: OnCallStart may add or change them
  // (the usual limits apply: docs/protocol.md, "Metadata").
  Metadata* metadata = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
  // True for streaming calls (ClientStream), false for unary ones.
  bool streaming = false;
};

class ClientInterceptor {
 public:
  virtual ~ClientInterceptor() = default;
  // Before anything is sent. Non-OK fails the call with that status (its
  // callback runs on the channel's loop, as for any failed call).
  virtual absl::Status OnCallStart(ClientCallInfo& call, std::any& state) = 0;
  // The call ended (only after OnCallStart returned OK) with the status its
  // caller gets, `latency` after OnCallStart. `call.metadata` is null here.
  virtual void OnCallEnd(const ClientCallInfo& call, std::any& state,
                         const absl::Status& status, absl::Duration latency) {}
};

using ClientInterceptors = std::vector<std::shared_ptr<ClientInterceptor>>;

}  // namespace bevrpc

#endif  // BEVRPC_RPC_INTERCEPTOR_H_
