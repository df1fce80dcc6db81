// EtcdClient: the few etcd v3.4 calls bevrpc's naming needs (range, put,
// delete, watch, lease grant / keep-alive / revoke), through etcd's
// HTTP/JSON gateway on an event loop.
//
//   auto etcd = naming::EtcdClient::Create(loop, members, {}).value();
//   etcd->Range("svc/echo/", naming::PrefixEnd("svc/echo/"),
//               [](absl::StatusOr<naming::EtcdRange> r) { ... });
//   absl::StatusOr<std::unique_ptr<naming::EtcdWatch>> w = etcd->Watch(
//       "svc/echo/", naming::PrefixEnd("svc/echo/"), r->revision + 1,
//       [](const naming::EtcdWatchUpdate& u) { ... },
//       [](absl::Status end) { ... });
//
// Members: a unary call that cannot reach its member (UNAVAILABLE) is tried
// on the next one, each member at most once per call; the client then
// stays on the member that answered. A watch uses the current member.
//
// Errors: unreachable etcd -> UNAVAILABLE; timeouts -> DEADLINE_EXCEEDED;
// an etcd error keeps etcd's gRPC code (a lease not found is NOT_FOUND);
// an unparsable answer -> INTERNAL naming the path.
//
// Threading: Create(), every method and the destructors (of the client and
// of an EtcdWatch) run on `loop`'s thread. Callbacks run there, exactly
// once for unary calls, never inline from the call, never after the client
// (or, for a watch, the EtcdWatch) is destroyed. Destroying either from
// inside one of its callbacks is allowed.
#ifndef BEVRPC_RPC_NAMING_ETCD_CLIENT_H_
#define BEVRPC_RPC_NAMING_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/naming/target.h"
#include "transport/event_loop.h"
#include "transport/http_client.h"

namespace bevrpc::naming {

// The range_end that makes [prefix, range_end) every key starting with
// `prefix`: the prefix with its last byte incremented (bytes 0xff dropped
// first); "\0" (every key) for an empty or all-0xff prefix.
std::string PrefixEnd(absl::string_view prefix);

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct EtcdRange {
  int64_t revision = 0;  // the store's revision the range was read at
  std::vector<EtcdKeyValue> kvs;
};

struct EtcdEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  EtcdKeyValue kv;  // for kDelete: key and mod_revision only
};

// One message of a watch stream.
struct EtcdWatchUpdate {
  int64_t header_revision = 0;
  bool created = false;
  // The watch was cancelled by etcd; with compact_revision > 0 because its
  // start revision was compacted away (re-list, then watch again).
  bool canceled = false;
  int64_t compact_revision = 0;
  std::string cancel_reason;
  std::vector<EtcdEvent> events;
};

struct EtcdLease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;
};

struct EtcdClientOptions {
  // Timeout of each unary call (per member tried). Default: 5 s.
  absl::Duration request_timeout = absl::Seconds(5);
  // The HTTP connections' connect and idle timeout; a watch is exempt from
  // the read side once established (transport::HttpClientOptions).
  // Default: 50 s.
  absl::Duration http_io_timeout = absl::Seconds(50);
};

// A running watch; destroying it cancels it (no callback afterwards).
// Loop thread only.
class EtcdWatch {
 public:
  virtual ~EtcdWatch() = default;
};

// Call only on the loop thread (see the file comment).
class EtcdClient {
 public:
  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  using UpdateCallback = absl::AnyInvocable<void(const EtcdWatchUpdate&)>;
  using EndCallback = absl::AnyInvocable<void(absl::Status)>;

  // `members` must not be empty; `loop` is borrowed and must outlive the
  // client.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      transport::EventLoop* loop, std::vector<HostPort> members,
      const EtcdClientOptions& options = {});
  ~EtcdClient();

  // Keys in [key, range_end) (just `key` when range_end is empty).
  void Range(absl::string_view key, absl::string_view range_end,
             Callback<EtcdRange> done);
  // Returns the revision of the put. lease 0 = none.
  void Put(absl::string_view key, absl::string_view value, int64_t lease,
           Callback<int64_t> done);
  // Returns the number of keys deleted.
  void DeleteRange(absl::string_view key, absl::string_view range_end,
                   Callback<int64_t> done);
  void LeaseGrant(int64_t ttl_seconds, Callback<EtcdLease> done);
  // Returns the lease's remaining TTL; 0 means the lease is gone (expired
  // or revoked).
  void LeaseKeepAlive(int64_t id, Callback<int64_t> done);
  // `timeout` bounds the call (one member only: a revoke is best effort).
  void LeaseRevoke(int64_t id, absl::Duration timeout,
                   absl::AnyInvocable<void(absl::Status)> done);

  // Watches [key, range_end) from `start_revision` on a connection of its
  // own. `on_update` gets each message; `on_end` is called once if the
  // stream ends (always an error: UNAVAILABLE when etcd closed it), and
  // nothing is called after it. Fails only if no connection can be made.
  absl::StatusOr<std::unique_ptr<EtcdWatch>> Watch(absl::string_view key,
                                   absl::string_view range_end,
                                   int64_t start_revision,
                                   UpdateCallback on_update,
                                   EndCallback on_end);

  // "H:P" of the member calls go to now.
  std::string current_member() const;

 private:
  class WatchImpl;
  using BodyCallback = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;

  EtcdClient(transport::EventLoop* loop, std::vector<HostPort> members,
             const EtcdClientOptions& options);
  transport::HttpClient* ClientFor(size_t member);
  // POSTs `body` to `path`, trying each member from the current one on
  // UNAVAILABLE; `done` gets a 200 answer's body or an error.
  void Call(std::string path, std::string body, size_t attempts_left,
            absl::Duration timeout, BodyCallback done);

  transport::EventLoop* loop_;
  std::vector<HostPort> members_;
  EtcdClientOptions options_;
  size_t current_ = 0;
  std::vector<std::unique_ptr<transport::HttpClient>> clients_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_ETCD_CLIENT_H_
