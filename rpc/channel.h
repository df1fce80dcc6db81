// Channel: the client side. Holds one or more connections to one address,
// multiplexes calls over them by call_id, and enforces deadlines locally.
//
//   auto channel = Channel::Create("127.0.0.1:8080").value();
//   EchoRequest req;  req.set_message("hi");
//   EchoResponse resp;
//   CallOptions options;  options.timeout = absl::Seconds(1);
//   absl::Status s = channel->Call("bevrpc.echo.Echo/Echo", req, &resp, options);
//
//   channel->CallAsync("bevrpc.echo.Echo/Echo", req, &resp, options,
//                      [](absl::Status s) { ... });   // on an I/O thread
//
// Connections are opened on first use and reopened after they close. A call
// on a connection that closes or is refused fails with UNAVAILABLE.
//
// Threading: thread-safe. Callbacks run on the channel's I/O threads and
// must not block; never inline from CallAsync(). Destroying the channel
// fails calls still open with CANCELLED; do not destroy it from one of its
// own callbacks, and make sure no thread (a timer on a borrowed loop, say)
// still starts calls on it once destruction begins.
#ifndef BEVRPC_RPC_CHANNEL_H_
#define BEVRPC_RPC_CHANNEL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/frame_codec.h"
#include "transport/address.h"
#include "transport/connection.h"
#include "transport/loop_pool.h"

namespace bevrpc {

namespace internal {
class ByteBudget;
class ClientSlot;
}  // namespace internal

struct ChannelOptions {
  // Connections to open to the address; calls are spread round-robin.
  // Default: 1.
  int num_connections = 1;
  // I/O threads the channel starts when `loops` is null. Default: 1.
  int io_threads = 1;
  // Loops to run on instead of starting threads; borrowed, must outlive the
  // channel. Default: null.
  transport::LoopPool* loops = nullptr;
  // Give up connecting after this long (DEADLINE_EXCEEDED for the calls
  // waiting). Default: 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Frame size limits. Default: see FrameLimits.
  FrameLimits limits;
  // Buffering and watermarks of each connection.
  transport::ConnectionOptions connection;
  // Streaming calls: the receive window per call (bytes of server messages
  // buffered until read), announced in the REQUEST. Larger windows need
  // fewer credit round trips: with 64 KiB messages, 64 KiB gives about
  // 0.5 GB/s on loopback and 256 KiB about 1.1 GB/s (docs/performance.md).
  // Default: 256 KiB.
  uint32_t stream_window_bytes = 256 * 1024;
  // Streaming calls: bytes of written but unsent messages a call may queue
  // before Write() returns false. Default: 64 KiB.
  size_t stream_write_buffer_bytes = 64 * 1024;
  // Admission: bytes of requests written to the channel's connections and
  // not yet handed to the socket, across all its connections. A call whose
  // request does not fit waits (in order, within its deadline) for earlier
  // requests to leave, or fails at once with RESOURCE_EXHAUSTED, as
  // `wait_for_request_budget` says. Either way memory is bounded and
  // nothing deadlocks: the channel always reads responses, whatever it
  // has queued. One request larger than the whole budget goes alone.
  // 0 = unlimited. Default: 64 MiB.
  size_t max_unsent_request_bytes = 64 * 1024 * 1024;
  // See max_unsent_request_bytes. Default: true (wait).
  bool wait_for_request_budget = true;
  // Keepalive: a connection from which nothing has been read for this long
  // gets a PING, to find a server or path that died without closing the
  // connection (calls would otherwise wait for their deadlines, or forever).
  // Servers close connections that ping more often than their
  // min_ping_interval (bevrpc's default: 10 s), so do not go below it.
  // Infinite turns pings off. Default: infinite.
  absl::Duration keepalive_time = absl::InfiniteDuration();
  // Keepalive: after a PING, a connection from which nothing at all is read
  // within this long is closed; its open calls fail with UNAVAILABLE
  // ("keepalive timeout ...") and new calls open a new connection.
  // Default: 20 s.
  absl::Duration keepalive_timeout = absl::Seconds(20);
};

// Identifies a call started with CallAsync(), for Cancel().
struct CallHandle {
  int slot = -1;
  uint64_t call_id = 0;
};

class ClientStreamBase;

class Channel {
 public:
  // Resolves `address` ("host:port", "[v6]:port"); may block on DNS. Does
  // not connect yet.
  static absl::StatusOr<std::unique_ptr<Channel>> Create(
      absl::string_view address, ChannelOptions options = {});
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Starts a call. `done` is called exactly once, on an I/O thread, with the
  // call's status. Before it, `response` is filled when the status is OK,
  // and `trailers` (if not null) whenever the server sent any — with an
  // error status too, where they often say why. `response` and `trailers`
  // must outlive the call; `request` is serialized before CallAsync()
  // returns. `headers` (if not null) receives the server's initial response
  // headers (ServerContext::AddHeader), which arrive before the response;
  // it must outlive the call. A call that does not fit the channel's
  // unsent-request budget
  // waits or fails with RESOURCE_EXHAUSTED (ChannelOptions::
  // max_unsent_request_bytes).
  CallHandle CallAsync(absl::string_view method,
                       const google::protobuf::Message& request,
                       google::protobuf::Message* response,
                       const CallOptions& options,
                       absl::AnyInvocable<void(absl::Status)> done,
                       Metadata* trailers = nullptr,
                       Metadata* headers = nullptr);

  // Cancels a call: its `done` gets CANCELLED (unless it already finished)
  // and the server is told to stop. Thread-safe; harmless on finished calls.
  void Cancel(const CallHandle& call);

  // Blocking call. Must not be called on one of the channel's I/O threads
  // (FAILED_PRECONDITION).
  absl::Status Call(absl::string_view method,
                    const google::protobuf::Message& request,
                    google::protobuf::Message* response,
                    const CallOptions& options = {},
                    Metadata* trailers = nullptr,
                    Metadata* headers = nullptr);

  const std::string& target() const { return target_; }

  // Admission (ChannelOptions::max_unsent_request_bytes): bytes of requests
  // admitted and not yet handed to the socket, and the most ever at once.
  // Thread-safe.
  size_t unsent_request_bytes() const;
  size_t peak_unsent_request_bytes() const;

 private:
  friend class ClientStreamBase;
  Channel() = default;

  std::string target_;
  ChannelOptions options_;
  // Before the slots: their connections give bytes back as they close.
  std::unique_ptr<internal::ByteBudget> unsent_budget_;
  std::unique_ptr<transport::LoopPool> owned_loops_;
  // Shared with closures posted to the loops, which may run after the
  // channel is gone (from a loop's destructor): they then find the slot
  // shut down and touch nothing else.
  std::vector<std::shared_ptr<internal::ClientSlot>> slots_;
  std::atomic<uint32_t> next_slot_{0};
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_CHANNEL_H_
