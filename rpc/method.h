// Method descriptions the dispatcher routes to, and typed helpers to build
// them. Generated code (tools/protoc-gen-bevrpc) uses these; hand-written
// registrations can too:
//
//   server.RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
//       "bevrpc.echo.Echo/Echo",
//       [](ServerContext& ctx, const EchoRequest& req, EchoResponse* resp) {
//         resp->set_message(req.message());
//         return absl::OkStatus();
//       }));
//
// A handler is called once per call with the request and a response owned
// by the call; both stay valid until the Completion is finished.
#ifndef BEVRPC_RPC_METHOD_H_
#define BEVRPC_RPC_METHOD_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "rpc/idempotency.h"
#include "rpc/server_context.h"
#include "rpc/server_stream.h"

namespace bevrpc {

// The shape of an RPC (docs/protocol.md, "Streaming calls").
enum class MethodKind {
  kUnary,
  kServerStreaming,
  kClientStreaming,
  kBidiStreaming,
};

// Where a handler runs.
enum class ExecutionMode {
  // On the connection's I/O loop. The handler must not block; it may finish
  // the call later from any thread (callback flavour).
  kInline,
  // On the server's worker pool; the handler may block (sync flavour).
  kWorkerPool,
};

using UntypedHandler = absl::AnyInvocable<void(
    ServerContext& ctx, const google::protobuf::Message& request,
    google::protobuf::Message* response, Completion done)>;

struct MethodDesc {
  // "package.Service/Method".
  std::string full_name;
  // Prototypes of the request and response types; not owned (generated
  // default instances live forever).
  const google::protobuf::Message* request_prototype = nullptr;
  const google::protobuf::Message* response_prototype = nullptr;
  ExecutionMode mode = ExecutionMode::kInline;
  // The shape of the RPC. Default: kUnary.
  MethodKind kind = MethodKind::kUnary;
  // Whether a call may be repeated (the .proto's idempotency_level;
  // rpc/idempotency.h). Default: kUnknown (never repeated once sent).
  Idempotency idempotency = Idempotency::kUnknown;
  // Shared so that a method table can be copied; called concurrently from
  // several threads, so it must be thread-safe.
  std::shared_ptr<UntypedHandler> handler;
};

// A callback-flavour method: runs on the I/O loop, finishes `done` later.
template <typename Request, typename Response>
MethodDesc CallbackMethod(
    std::string full_name,
    absl::AnyInvocable<void(ServerContext&, const Request&, Response*,
                            Completion)>
        fn) {
  MethodDesc m;
  m.full_name = std::move(full_name);
  m.request_prototype = &Request::default_instance();
  m.response_prototype = &Response::default_instance();
  m.mode = ExecutionMode::kInline;
  m.handler = std::make_shared<UntypedHandler>(
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message& req,
                           google::protobuf::Message* resp,
                           Completion done) mutable {
        fn(ctx, static_cast<const Request&>(req), static_cast<Response*>(resp),
           std::move(done));
      });
  return m;
}

// A sync-flavour method: runs on the worker pool, returns its status.
template <typename Request, typename Response>
MethodDesc SyncMethod(
    std::string full_name,
    absl::AnyInvocable<absl::Status(ServerContext&, const Request&, Response*)>
        fn) {
  MethodDesc m;
  m.full_name = std::move(full_name);
  m.request_prototype = &Request::default_instance();
  m.response_prototype = &Response::default_instance();
  m.mode = ExecutionMode::kWorkerPool;
  m.handler = std::make_shared<UntypedHandler>(
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message& req,
                           google::protobuf::Message* resp,
                           Completion done) mutable {
        std::move(done).Finish(fn(ctx, static_cast<const Request&>(req),
                                  static_cast<Response*>(resp)));
      });
  return m;
}

namespace internal {

template <typename Request, typename Response>
MethodDesc MakeMethod(std::string full_name, MethodKind kind,
                      ExecutionMode mode, UntypedHandler handler) {
  MethodDesc m;
  m.full_name = std::move(full_name);
  m.request_prototype = &Request::default_instance();
  m.response_prototype = &Response::default_instance();
  m.mode = mode;
  m.kind = kind;
  m.handler = std::make_shared<UntypedHandler>(std::move(handler));
  return m;
}

}  // namespace internal

// Streaming methods (rpc/server_stream.h), in both flavours. The writer,
// reader and stream handles stay valid until the call is finished; the
// sync flavours finish the call with the status they return.

// Server streaming: one request, a stream of responses.
template <typename Request, typename Response>
MethodDesc ServerStreamingCallbackMethod(
    std::string full_name,
    absl::AnyInvocable<void(ServerContext&, const Request&,
                            ServerWriter<Response>, Completion)>
        fn) {
  return internal::MakeMethod<Request, Response>(
      std::move(full_name), MethodKind::kServerStreaming,
      ExecutionMode::kInline,
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message& req,
                           google::protobuf::Message*,
                           Completion done) mutable {
        fn(ctx, static_cast<const Request&>(req),
           ServerWriter<Response>(ServerStream(ctx)), std::move(done));
      });
}

template <typename Request, typename Response>
MethodDesc ServerStreamingSyncMethod(
    std::string full_name,
    absl::AnyInvocable<absl::Status(ServerContext&, const Request&,
                                    ServerWriter<Response>&)>
        fn) {
  return internal::MakeMethod<Request, Response>(
      std::move(full_name), MethodKind::kServerStreaming,
      ExecutionMode::kWorkerPool,
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message& req,
                           google::protobuf::Message*,
                           Completion done) mutable {
        ServerWriter<Response> writer{ServerStream(ctx)};
        std::move(done).Finish(
            fn(ctx, static_cast<const Request&>(req), writer));
      });
}

// Client streaming: a stream of requests, one response.
template <typename Request, typename Response>
MethodDesc ClientStreamingCallbackMethod(
    std::string full_name,
    absl::AnyInvocable<void(ServerContext&, ServerReader<Request>, Response*,
                            Completion)>
        fn) {
  return internal::MakeMethod<Request, Response>(
      std::move(full_name), MethodKind::kClientStreaming,
      ExecutionMode::kInline,
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message&,
                           google::protobuf::Message* resp,
                           Completion done) mutable {
        fn(ctx, ServerReader<Request>(ServerStream(ctx)),
           static_cast<Response*>(resp), std::move(done));
      });
}

template <typename Request, typename Response>
MethodDesc ClientStreamingSyncMethod(
    std::string full_name,
    absl::AnyInvocable<absl::Status(ServerContext&, ServerReader<Request>&,
                                    Response*)>
        fn) {
  return internal::MakeMethod<Request, Response>(
      std::move(full_name), MethodKind::kClientStreaming,
      ExecutionMode::kWorkerPool,
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message&,
                           google::protobuf::Message* resp,
                           Completion done) mutable {
        ServerReader<Request> reader{ServerStream(ctx)};
        std::move(done).Finish(
            fn(ctx, reader, static_cast<Response*>(resp)));
      });
}

// Bidirectional: both sides stream.
template <typename Request, typename Response>
MethodDesc BidiStreamingCallbackMethod(
    std::string full_name,
    absl::AnyInvocable<void(ServerContext&,
                            ServerReaderWriter<Request, Response>, Completion)>
        fn) {
  return internal::MakeMethod<Request, Response>(
      std::move(full_name), MethodKind::kBidiStreaming, ExecutionMode::kInline,
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message&,
                           google::protobuf::Message*,
                           Completion done) mutable {
        fn(ctx, ServerReaderWriter<Request, Response>(ServerStream(ctx)),
           std::move(done));
      });
}

template <typename Request, typename Response>
MethodDesc BidiStreamingSyncMethod(
    std::string full_name,
    absl::AnyInvocable<absl::Status(ServerContext&,
                                    ServerReaderWriter<Request, Response>&)>
        fn) {
  return internal::MakeMethod<Request, Response>(
      std::move(full_name), MethodKind::kBidiStreaming,
      ExecutionMode::kWorkerPool,
      [fn = std::move(fn)](ServerContext& ctx,
                           const google::protobuf::Message&,
                           google::protobuf::Message*,
                           Completion done) mutable {
        ServerReaderWriter<Request, Response> stream{ServerStream(ctx)};
        std::move(done).Finish(fn(ctx, stream));
      });
}

}  // namespace bevrpc

#endif  // BEVRPC_RPC_METHOD_H_
