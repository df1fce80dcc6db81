// Server-side streams: what a streaming handler writes to and reads from.
//
//   // Server streaming, callback flavour (runs on the I/O loop):
//   void ExpandAsync(ServerContext& ctx, const ExpandRequest& req,
//                    ServerWriter<EchoResponse> writer, Completion done) {
//     ... while (writer.Write(msg)) { ... }      // false: not writable now
//     writer.OnWritable([=] { /* continue */ }); // called when it is again
//     std::move(done).Finish(absl::OkStatus());  // after the last Write
//   }
//   // Sync flavour (runs on the worker pool, may block):
//   absl::Status Expand(ServerContext& ctx, const ExpandRequest& req,
//                       ServerWriter<EchoResponse>& writer) {
//     absl::Status s = writer.WriteBlocking(msg);  // waits for room
//     ...
//   }
//
// Writes never buffer without bound. A stream accepts a message when the
// call's queue of not-yet-sent messages is under
// ServerOptions::stream_write_buffer_bytes and the connection is writable
// (its output is under the write high watermark); queued messages go out
// as the client grants credit (WINDOW_UPDATE) and the connection drains.
// A Write() that returns false took nothing: wait for OnWritable() (or use
// WriteBlocking() on a worker thread).
//
// Reads deliver the client's messages in order, then end-of-stream once
// (AtEnd()). A message is only acknowledged to the client (credit granted)
// once the handler has read it, so a handler that stops reading stops the
// client, never growing the server's memory beyond one window.
//
// Handles are cheap to copy (a reference to the call) and may be used from
// any thread; they stay safe to use after the call ends (writes then fail,
// reads report the end). Messages written after the handler finished the
// call are rejected. OnWritable/OnReadable callbacks run once, on the call's
// I/O loop, and must not block; if the call ends first they still run once,
// so a waiting handler sees the end (Write() false, ctx.IsCancelled()).
#ifndef BEVRPC_RPC_SERVER_STREAM_H_
#define BEVRPC_RPC_SERVER_STREAM_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "rpc/internal/ref_ptr.h"
#include "rpc/server_context.h"

namespace bevrpc {

// The untyped stream of one call. Use the typed views below.
class ServerStream {
 public:
  ServerStream() = default;
  // The stream of the call `ctx` belongs to.
  explicit ServerStream(ServerContext& ctx);
  ServerStream(const ServerStream& other);
  ServerStream(ServerStream&& other) noexcept;
  ServerStream& operator=(ServerStream other) noexcept;
  ~ServerStream();

  // Writing (server to client).
  bool Write(const google::protobuf::Message& message);
  absl::Status WriteBlocking(const google::protobuf::Message& message);
  void OnWritable(absl::AnyInvocable<void()> callback);

  // Reading (client to server). `message` must have the method's request
  // type.
  bool TryRead(google::protobuf::Message* message);
  bool ReadBlocking(google::protobuf::Message* message);
  bool AtEnd() const;
  void OnReadable(absl::AnyInvocable<void()> callback);

 private:
  internal::RefPtr<internal::ServerCall> call_;
};

// Writes the responses of a server-streaming or bidirectional call.
template <typename Response>
class ServerWriter {
 public:
  // Implicit, so generated code can pass a ServerStream.
  ServerWriter(ServerStream stream) : stream_(std::move(stream)) {}  // NOLINT

  // Queues `message` and returns true, or returns false (taking nothing)
  // when the stream is not writable now or the call has ended.
  bool Write(const Response& message) { return stream_.Write(message); }
  // Worker threads only: waits until `message` is queued. Fails with
  // CANCELLED / DEADLINE_EXCEEDED / UNAVAILABLE (the call ended) or
  // FAILED_PRECONDITION (called on the call's I/O thread, where waiting
  // would deadlock).
  absl::Status WriteBlocking(const Response& message) {
    return stream_.WriteBlocking(message);
  }
  // Runs `callback` once on the I/O loop when Write() would accept a
  // message again (or the call has ended). Replaces an earlier callback.
  void OnWritable(absl::AnyInvocable<void()> callback) {
    stream_.OnWritable(std::move(callback));
  }

 private:
  ServerStream stream_;
};

// Reads the requests of a client-streaming or bidirectional call.
template <typename Request>
class ServerReader {
 public:
  ServerReader(ServerStream stream) : stream_(std::move(stream)) {}  // NOLINT

  // Moves the next message into `*message` and returns true, or returns
  // false when none has arrived yet (or the stream is at its end).
  bool TryRead(Request* message) { return stream_.TryRead(message); }
  // Worker threads only: waits for the next message; false at the end of
  // the stream or when the call ended. To tell them apart, check
  // ctx.IsCancelled(): true only when the call ended (cancelled, deadline,
  // connection lost), false after the client's normal HALF_CLOSE.
  bool Read(Request* message) { return stream_.ReadBlocking(message); }
  // True once the client half-closed and every message was read, or the
  // call ended.
  bool AtEnd() const { return stream_.AtEnd(); }
  // Runs `callback` once on the I/O loop when TryRead() has a message or
  // AtEnd() turned true. Replaces an earlier callback.
  void OnReadable(absl::AnyInvocable<void()> callback) {
    stream_.OnReadable(std::move(callback));
  }

 private:
  ServerStream stream_;
};

// Both directions of a bidirectional call.
template <typename Request, typename Response>
class ServerReaderWriter : public ServerReader<Request>,
                           public ServerWriter<Response> {
 public:
  ServerReaderWriter(const ServerStream& stream)  // NOLINT: implicit
      : ServerReader<Request>(stream), ServerWriter<Response>(stream) {}
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_SERVER_STREAM_H_
