// ClientStream: the client's side of a streaming call.
//
//   auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
//       channel, "bevrpc.echo.Echo/Chat", MethodKind::kBidiStreaming);
//   stream->WriteBlocking(request);       // waits for credit / room
//   stream->CloseSend();                  // HALF_CLOSE after what is queued
//   EchoResponse response;
//   while (stream->Read(&response)) { ... }
//   absl::Status status = stream->Finish();
//
// Shapes: server streaming sends its one request with Open() (no Write());
// client streaming reads its one response with Read() after CloseSend();
// bidirectional does both. The rules on the wire are in docs/protocol.md.
//
// Flow control: Write() queues at most ChannelOptions::stream_write_buffer_
// bytes of unsent messages (false when full: wait for OnWritable(), or use
// WriteBlocking()); queued messages go out as the server grants credit.
// Received messages are acknowledged (credit granted) only as they are
// read, so a client that stops reading stops the server.
//
// Threading: every method may be called from any thread, except that the
// blocking ones (WriteBlocking, Read, Finish) must not run on the channel's
// I/O thread. Callbacks run on that thread and must not block. A stream
// must be destroyed before its Channel; destroying an unfinished stream
// cancels the call.
#ifndef BEVRPC_RPC_CLIENT_STREAM_H_
#define BEVRPC_RPC_CLIENT_STREAM_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/method.h"

namespace bevrpc {

namespace internal {
class ClientStreamState;
}  // namespace internal

// Untyped; use ClientStream<Request, Response>.
class ClientStreamBase {
 public:
  ClientStreamBase(const ClientStreamBase&) = delete;
  ClientStreamBase& operator=(const ClientStreamBase&) = delete;
  // Cancels the call unless it has finished.
  virtual ~ClientStreamBase();

  // Half-closes after the messages already queued. Idempotent.
  void CloseSend();
  // Runs `callback` once on the I/O thread when Write() would accept a
  // message again, or the call ended. Replaces an earlier one.
  void OnWritable(absl::AnyInvocable<void()> callback);
  // True once every message was read and the call has ended.
  bool AtEnd() const;
  // Runs `callback` once on the I/O thread when a message can be read or
  // the stream is at its end. Replaces an earlier one.
  void OnReadable(absl::AnyInvocable<void()> callback);
  // Runs `callback` once on the I/O thread with the final status.
  void OnDone(absl::AnyInvocable<void(absl::Status)> callback);
  // Waits until the call ends and returns its status. Messages not read by
  // then are dropped (a server waiting for credit may otherwise never
  // finish: read to the end first).
  absl::Status Finish();
  // Ends the call with CANCELLED (sends CANCEL).
  void Cancel();
  // Initial response headers (HEADERS), once the first message or the end
  // arrived; trailers once the call ended. Copies.
  Metadata headers() const;
  Metadata trailers() const;

 protected:
  explicit ClientStreamBase(std::shared_ptr<internal::ClientStreamState> state);
  static std::shared_ptr<internal::ClientStreamState> Start(
      Channel& channel, absl::string_view method, MethodKind kind,
      const google::protobuf::Message* request,
      const google::protobuf::Message& response_prototype,
      const CallOptions& options);

  bool WriteMessage(const google::protobuf::Message& message);
  absl::Status CheckSize(size_t bytes);
  absl::Status WriteMessageBlocking(const google::protobuf::Message& message);
  bool TryReadMessage(google::protobuf::Message* message);
  bool ReadMessage(google::protobuf::Message* message);

 private:
  std::shared_ptr<internal::ClientStreamState> state_;
};

template <typename Request, typename Response>
class ClientStream : public ClientStreamBase {
 public:
  // Starts the call. `request` is the one request of a server-streaming
  // call; null for the other shapes. Errors (unknown method, ...) arrive as
  // the stream's final status.
  static std::unique_ptr<ClientStream> Open(Channel& channel,
                                            absl::string_view method,
                                            MethodKind kind,
                                            const Request* request = nullptr,
                                            const CallOptions& options = {}) {
    return std::unique_ptr<ClientStream>(new ClientStream(
        Start(channel, method, kind, request, Response::default_instance(),
              options)));
  }

  // Queues `message` (true), or takes nothing when the queue is full or the
  // call ended (false).
  bool Write(const Request& message) { return WriteMessage(message); }
  // Waits for room; fails once the call has ended (with its status).
  absl::Status WriteBlocking(const Request& message) {
    return WriteMessageBlocking(message);
  }
  // The next message, if one has arrived.
  bool TryRead(Response* message) { return TryReadMessage(message); }
  // Waits for the next message; false once nothing more will come: the
  // server finished, or the call ended otherwise (cancelled, deadline,
  // connection lost). Finish() tells which: OK after a normal end.
  bool Read(Response* message) { return ReadMessage(message); }

 private:
  using ClientStreamBase::ClientStreamBase;
};

// A stream over message types known only at run time (e.g. found through
// reflection, as the CLI does). Same contract as ClientStream; messages must
// have the method's types.
class DynamicClientStream : public ClientStreamBase {
 public:
  static std::unique_ptr<DynamicClientStream> Open(
      Channel& channel, absl::string_view method, MethodKind kind,
      const google::protobuf::Message* request,
      const google::protobuf::Message& response_prototype,
      const CallOptions& options = {}) {
    return std::unique_ptr<DynamicClientStream>(new DynamicClientStream(
        Start(channel, method, kind, request, response_prototype, options)));
  }

  bool Write(const google::protobuf::Message& message) {
    return WriteMessage(message);
  }
  absl::Status WriteBlocking(const google::protobuf::Message& message) {
    return WriteMessageBlocking(message);
  }
  bool TryRead(google::protobuf::Message* message) {
    return TryReadMessage(message);
  }
  bool Read(google::protobuf::Message* message) { return ReadMessage(message); }

 private:
  using ClientStreamBase::ClientStreamBase;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_CLIENT_STREAM_H_
