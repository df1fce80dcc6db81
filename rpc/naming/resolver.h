// Resolver: turns a parsed Target into endpoint lists, on an event loop.
//
//   auto r = naming::CreateResolver(*target, loop, {}).value();   // on loop
//   (rpc/naming/resolvers.h)
//   r->Start([](absl::StatusOr<naming::EndpointList> list) {
//     // every update is the whole current list, never a diff
//   });
//
// A resolver reports the *full* list each time it changes (the balancer
// rebuilds its picker from it), or an error when it has never had a list
// or has lost its source (dns failing, file unreadable, etcd unreachable).
// An error after a good list does not mean the endpoints are gone: the
// channel keeps using the last good list.
//
// Kinds (rpc/naming/*_resolver.*): HOST:PORT and list:/// (every address
// each host resolves to, once), dns:/// (evdns, re-resolved), file:///
// (reloaded when the file changes), etcd:// (range + watch).
//
// Threading: CreateResolver(), Start(), RequestRefresh() and the
// destructor run on `loop`'s thread (or before the loop runs); the listener
// is called on that thread, never inline from Start(), and never after the
// resolver is destroyed.
#ifndef BEVRPC_RPC_NAMING_RESOLVER_H_
#define BEVRPC_RPC_NAMING_RESOLVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rpc/naming/target.h"
#include "transport/event_loop.h"

namespace bevrpc::naming {

// One endpoint as a resolver reports it.
struct EndpointInfo {
  // Numeric "IP:PORT" or "[V6]:PORT": what the channel connects to, and
  // the endpoint's key in the list (no two entries share one).
  std::string address;
  // Relative share for weighted_round_robin; >= 1. Default 1.
  uint32_t weight = 1;
  // Free-form placement label (file: zone=Z, etcd: "zone").
  std::string zone;
  // Stable identity across restarts on other ports (ring_hash hashes it);
  // empty means the address is the identity.
  std::string id;
  // Free-form version label (etcd: "version").
  std::string version;

  friend bool operator==(const EndpointInfo& a, const EndpointInfo& b) {
    return a.address == b.address && a.weight == b.weight &&
           a.zone == b.zone && a.id == b.id && a.version == b.version;
  }
};

using EndpointList = std::vector<EndpointInfo>;

struct ResolverOptions {
  // dns:///: re-resolve this often, and at most this often on
  // RequestRefresh(). Defaults: 30 s and 1 s.
  absl::Duration dns_refresh_interval = absl::Seconds(30);
  absl::Duration dns_min_refresh_interval = absl::Seconds(1);
  // dns:///: per-query timeout (evdns "timeout:"), attempts ("attempts:").
  absl::Duration dns_timeout = absl::Seconds(2);
  int dns_attempts = 2;
  // file:///: how often the file is checked for a change (inode, size,
  // mtime). Default 250 ms.
  absl::Duration file_poll_interval = absl::Milliseconds(250);
  // etcd://: reconnect backoff after a failure: initial, cap (doubling,
  // jittered). Defaults 100 ms and 5 s.
  absl::Duration etcd_initial_backoff = absl::Milliseconds(100);
  absl::Duration etcd_max_backoff = absl::Seconds(5);
  // etcd://: timeout of one range request / of connecting. Default 5 s.
  absl::Duration etcd_request_timeout = absl::Seconds(5);
};

class Resolver {
 public:
  using Listener = absl::AnyInvocable<void(absl::StatusOr<EndpointList>)>;

  virtual ~Resolver() = default;

  // Starts resolving; `listener` gets each new full list (deduplicated by
  // address, in a stable order), or an error as described above. Called
  // once.
  virtual void Start(Listener listener) = 0;

  // A connection to one of the endpoints failed: re-resolve soon where
  // that can help (dns:///, within its minimum interval). Default: nothing.
  virtual void RequestRefresh() {}

  // A resolver whose list is fixed and known at creation (HOST:PORT,
  // list:///) returns it, so a channel can use it before its loop runs
  // Start(); others return null. Any thread.
  virtual const EndpointList* fixed_list() const { return nullptr; }
};

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_RESOLVER_H_
