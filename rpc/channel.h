// Channel: the client side. Connects to the endpoints its target names,
// spreads calls over them with a load balancer, multiplexes calls over
// each connection by call_id, and enforces deadlines locally.
//
//   auto channel = Channel::Create("127.0.0.1:8080").value();
//   auto fleet = Channel::Create("etcd://127.0.0.1:2379/services/echo").value();
//   EchoRequest req;  req.set_message("hi");
//   EchoResponse resp;
//   CallOptions options;  options.timeout = absl::Seconds(1);
//   absl::Status s = channel->Call("bevrpc.echo.Echo/Echo", req, &resp, options);
//
//   channel->CallAsync("bevrpc.echo.Echo/Echo", req, &resp, options,
//                      [](absl::Status s) { ... });   // on an I/O thread
//
// Targets (rpc/naming/target.h, docs/naming.md): HOST:PORT (every address
// it resolves to), dns:///HOST:PORT, list:///A,B,..., file:///PATH,
// etcd://H:P/PREFIX. Endpoints come and go as the target's resolver says;
// removed endpoints get no new calls and finish their open ones.
//
// Connections are opened on first use and reopened after they close; an
// endpoint whose connect failed is skipped (while others are usable) and
// reconnected in the background with backoff. A call on a connection that
// closes or is refused fails with UNAVAILABLE, unless it is retried.
//
// Failures (docs/resilience.md): a call the server provably never ran
// (connect failed, refused by GOAWAY or overload before dispatch) moves to
// another endpoint without counting as an attempt. Methods marked
// NO_SIDE_EFFECTS or IDEMPOTENT in their .proto are retried on
// UNAVAILABLE (3 attempts, jittered backoff, preferring another endpoint);
// ChannelOptions::service_config sets timeouts, retry and hedging policies
// per method, and a retry throttle bounds the extra load. An endpoint
// whose calls keep failing is ejected for a while
// (ChannelOptions::outlier_detection).
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
#include "rpc/balancing/outlier_detector.h"
#include "rpc/call_options.h"
#include "rpc/interceptor.h"
#include "rpc/frame_codec.h"
#include "rpc/metrics/metrics.h"
#include "rpc/naming/resolver.h"
#include "rpc/service_config.h"
#include "transport/address.h"
#include "transport/connection.h"
#include "transport/tls.h"
#include "transport/loop_pool.h"

namespace bevrpc {

namespace balancing {
class EndpointHealth;
}  // namespace balancing

namespace internal {
class ByteBudget;
class CallPolicies;
struct CallPolicy;
class CallMetrics;
class ClientMetrics;
class ClientSlot;
class EndpointSet;
class HedgedCall;
}  // namespace internal

// Reconnecting to an endpoint whose connect failed (gRPC's connection
// backoff): the first retry after `initial`, each next one `multiplier`
// times later, up to `max`, each randomised by +-`jitter`.
struct ConnectBackoff {
  absl::Duration initial = absl::Seconds(1);
  double multiplier = 1.6;
  double jitter = 0.2;
  absl::Duration max = absl::Seconds(120);
};

struct ChannelOptions {
  // Connections to open to each endpoint; calls to one endpoint are spread
  // over them. Default: 1.
  int num_connections = 1;
  // How calls are spread over the target's endpoints: "pick_first",
  // "round_robin", "weighted_round_robin", "least_loaded", "ring_hash"
  // (rpc/balancing/picker.h; ring_hash hashes CallOptions::hash_key).
  // Default: "round_robin".
  std::string load_balancer = "round_robin";
  // Resolution of dns:///, file:/// and etcd:// targets (refresh
  // intervals, polling, backoff). Default: see naming::ResolverOptions.
  naming::ResolverOptions resolver;
  // Reconnecting after a failed connect. Default: 1 s, x1.6, +-20 %,
  // at most 120 s.
  ConnectBackoff connect_backoff;
  // Per-method timeouts, retries and hedging, and the retry throttle
  // (rpc/service_config.h; ParseServiceConfig() reads gRPC's JSON form).
  // Default: no entries; throttling at 100 tokens, 0.1 per success.
  ServiceConfig service_config;
  // Retries of methods whose .proto says NO_SIDE_EFFECTS or IDEMPOTENT
  // (rpc/idempotency.h) where no service_config entry sets a retry or
  // hedging policy. max_attempts 0 turns this off. Default: 3 attempts,
  // 100 ms initial backoff, x2, at most 1 s, on UNAVAILABLE.
  RetryPolicy idempotent_retry = {3, absl::Milliseconds(100), absl::Seconds(1),
                                  2.0, {absl::StatusCode::kUnavailable}};
  // Outlier ejection: an endpoint whose calls fail (5 UNAVAILABLE in a
  // row, or a high error rate) gets no calls for a while, 100 ms doubling
  // up to 30 s, never more than half the endpoints at once
  // (rpc/balancing/outlier_detector.h). `enabled = false` turns it off.
  // Default: on, see balancing::OutlierDetection.
  balancing::OutlierDetection outlier_detection;
  // Calls waiting for the target's first endpoint list (or, with
  // CallOptions::wait_for_ready, for a non-empty one): more fail at once
  // with RESOURCE_EXHAUSTED. Default: 10,000.
  size_t max_calls_waiting_for_endpoints = 10000;
  // ring_hash_strict: how long an endpoint identity that left the list
  // keeps its keys (calls for them wait for an endpoint with that identity
  // to come back, within their deadlines); afterwards its keys move to the
  // other endpoints. Default: 30 s.
  absl::Duration ring_hash_strict_hold = absl::Seconds(30);
  // I/O threads the channel starts when `loops` is null. Default: 1.
  int io_threads = 1;
  // Loops to run on instead of starting threads; borrowed, must outlive the
  // channel. Default: null.
  transport::LoopPool* loops = nullptr;
  // Give up connecting after this long: a failed connect (UNAVAILABLE for
  // the calls waiting, unless another endpoint takes them). Default: 5 s.
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
  // Where the channel's metrics go (rpc/internal/client_metrics.h: per
  // method bevrpc_client_started, _handled{code}, _in_flight,
  // _handling_seconds, bytes, stream messages, retries, hedges; per
  // endpoint {target, endpoint} in flight, errors, ejections, state).
  // Borrowed: must outlive the channel. Default: MetricsRegistry::Default().
  metrics::MetricsRegistry* metrics_registry =
      &metrics::MetricsRegistry::Default();
  // Records those metrics. Off, calls record nothing at all. Default: true.
  bool enable_metrics = true;
  // Run around every call, in order, before anything is sent (once per
  // logical call, not per retry or hedge); they may add request headers
  // or refuse the call (rpc/interceptor.h). Default: none.
  ClientInterceptors interceptors;
  // TLS (docs/security.md): on when tls.enable or any of its files is set.
  // The server's certificate is verified against ca_file (or the system
  // store) and the target's host (HOST:PORT and dns:/// targets) or each
  // endpoint's IP address (list, file, etcd), unless server_name is set;
  // cert_file/key_file present a client certificate (mutual TLS). Files
  // that do not load fail every call with UNAVAILABLE naming the file.
  // Default: off (plaintext).
  transport::TlsClientOptions tls;
};

// Identifies a call started with CallAsync(), for Cancel(), wherever the
// call has moved since (retries, failed connects).
struct CallHandle {
  std::weak_ptr<internal::ClientSlot> slot;  // Empty while parked.
  uint64_t call_id = 0;
  uint64_t ticket = 0;  // Parked calls (no endpoint known yet).
  std::shared_ptr<internal::HedgedCall> hedged;  // Hedged calls.
};

// One endpoint of a channel's target, as Channel::endpoints() reports it.
struct ChannelEndpoint {
  std::string address;  // "IP:PORT" / "[V6]:PORT"
  // "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "EJECTED".
  std::string state;
  uint32_t weight = 1;
  std::string zone;
  std::string id;
  std::string version;
  uint64_t calls_started = 0;  // Calls this channel sent it so far.
  // Outlier ejection: times ejected so far, and (EJECTED) the time left.
  uint32_t ejections = 0;
  absl::Duration ejection_left = absl::ZeroDuration();
};

class ClientStreamBase;

class Channel {
 public:
  // A channel to `target` (any form above). HOST:PORT and list:/// names
  // are resolved here (getaddrinfo: may block); other targets resolve in
  // the background, and calls started before their first list wait for it
  // within their deadlines. Does not connect yet. A target that does not
  // parse, or an unknown load_balancer, is INVALID_ARGUMENT.
  static absl::StatusOr<std::unique_ptr<Channel>> Create(
      absl::string_view target, ChannelOptions options = {});
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

  // The target's current endpoints, their state and calls sent to each.
  // Thread-safe.
  std::vector<ChannelEndpoint> endpoints() const;
  // Waits until the target's first endpoint list (possibly empty) is
  // known: OK; the resolver's error if it failed first; DEADLINE_EXCEEDED
  // after `timeout`. Not on the channel's I/O threads.
  absl::Status WaitForEndpoints(absl::Duration timeout) const;

  // Retry throttle tokens left (RetryThrottling), in thousandths; the
  // maximum when throttling is off. Thread-safe.
  int64_t retry_milli_tokens() const;

  // Admission (ChannelOptions::max_unsent_request_bytes): bytes of requests
  // admitted and not yet handed to the socket, and the most ever at once.
  // Thread-safe.
  size_t unsent_request_bytes() const;
  size_t peak_unsent_request_bytes() const;

 private:
  friend class ClientStreamBase;
  friend class internal::HedgedCall;
  Channel() = default;

  // CallAsync() once the interceptors have run (or there are none).
  CallHandle CallAsyncIntercepted(absl::string_view method,
                                  const google::protobuf::Message& request,
                                  google::protobuf::Message* response,
                                  const CallOptions& options,
                                  absl::AnyInvocable<void(absl::Status)> done,
                                  Metadata* trailers, Metadata* headers);

  // One attempt of a unary call: the request as a message or already
  // serialized (`request_bytes`), the policy that applies (null: none;
  // its retry rule is used unless `retry` is false), endpoints to avoid
  // (hedging), and the method's metrics (null: not recorded here).
  CallHandle StartCall(
      absl::string_view method, const google::protobuf::Message* request,
      const std::string* request_bytes, google::protobuf::Message* response,
      const CallOptions& options, const internal::CallPolicy* policy,
      bool retry, absl::AnyInvocable<void(absl::Status)>&& done,
      Metadata* trailers, Metadata* headers,
      const std::vector<const balancing::EndpointHealth*>* avoid,
      internal::CallMetrics* metrics);

  std::string target_;
  ChannelOptions options_;
  // Timeouts, retry and hedging rules per method; the retry throttle.
  std::unique_ptr<internal::CallPolicies> policies_;
  // Per-method and per-endpoint metrics (null: enable_metrics off).
  // Shared with the set and the endpoints' series, so that a call ending
  // in a closure that runs after the channel is gone still finds them.
  std::shared_ptr<internal::ClientMetrics> metrics_;
  // Before the slots: their connections give bytes back as they close.
  std::unique_ptr<internal::ByteBudget> unsent_budget_;
  std::unique_ptr<transport::LoopPool> owned_loops_;
  std::vector<transport::EventLoop*> loops_;
  // Endpoints, their slots, the resolver and the picker. Shared with
  // closures posted to the loops, which may run after the channel is gone
  // (from a loop's destructor): they then find it shut down.
  std::shared_ptr<internal::EndpointSet> set_;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_CHANNEL_H_
