// DnsResolver: asynchronous A + AAAA lookups with libevent's evdns, on one
// EventLoop.
//
//   DnsResolverOptions opts;
//   opts.nameserver = "127.0.0.1:5353";           // empty: /etc/resolv.conf
//   auto dns = transport::DnsResolver::Create(loop, opts).value();  // on loop
//   dns->Resolve("svc.example", 8080, [](absl::StatusOr<DnsAnswer> a) {
//     // on the loop thread, never inline from Resolve()
//   });
//
// A lookup sends an A and an AAAA query in parallel (evdns_base_resolve_ipv4
// and _ipv6, so the answer's TTL is known) and waits for both. The answer
// lists every address, IPv4 first then IPv6, each family in the order the
// server sent it, duplicates removed. When one family answers and the other
// fails, the answer holds the family that answered. Errors:
//   NOT_FOUND      the name does not exist (NXDOMAIN), or has neither A
//                  nor AAAA records
//   UNAVAILABLE    no answer: timeouts, SERVFAIL (evdns treats it as a
//                  timeout and retries), refused, truncated, ...
//   INVALID_ARGUMENT  a name evdns cannot send (empty, too long)
// A numeric IPv4 or IPv6 host is answered without any query (still
// asynchronously). /etc/hosts is NOT consulted: dns:/// means "ask DNS";
// plain HOST:PORT targets go through the system's getaddrinfo instead. With
// the system configuration, resolv.conf's search domains and ndots apply.
//
// Configuration: either /etc/resolv.conf (Create fails with
// FAILED_PRECONDITION naming the file when it lists no nameserver; there is
// no silent fallback to getaddrinfo, which would block the loop) or one
// explicit nameserver "IP[:PORT]". timeout and attempts override evdns's
// defaults (5 s, 3) and resolv.conf's. The resolver uses
// EVDNS_BASE_DISABLE_WHEN_INACTIVE: an idle resolver keeps no event pending.
//
// Threading: Create(), Resolve(), Cancel() and the destructor on the loop
// thread only (or before the loop runs). Callbacks run on the loop thread,
// exactly once per Resolve() unless cancelled, never inline from Resolve(),
// never after Cancel() of that query or after the resolver is destroyed.
// The loop must outlive the resolver; it should run at least one more turn
// after the resolver (or a cancelled query) goes away, because libevent
// reports cancellations through deferred callbacks that free their
// bookkeeping (a few hundred bytes per cancelled query otherwise leak when
// the loop is destroyed first).
#ifndef BEVRPC_TRANSPORT_DNS_H_
#define BEVRPC_TRANSPORT_DNS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transport/address.h"
#include "transport/event_loop.h"

struct evdns_base;

namespace bevrpc::transport {

struct DnsResolverOptions {
  // "IP" or "IP:PORT" ("[V6]:PORT" for IPv6) of the one nameserver to ask;
  // empty means the nameservers (and search domains) of /etc/resolv.conf.
  // Default: empty.
  std::string nameserver;
  // Wait this long for an answer before resending (evdns "timeout:").
  // Default: 2 s.
  absl::Duration timeout = absl::Seconds(2);
  // Send each query at most this many times (evdns "attempts:"); >= 1.
  // Default: 2.
  int attempts = 2;
};

struct DnsAnswer {
  // IPv4 first, then IPv6; answer order within a family; no duplicates;
  // never empty. Each carries the port passed to Resolve().
  std::vector<SocketAddress> addresses;
  // The smallest TTL among the answers that were used; zero for numeric
  // hosts.
  absl::Duration min_ttl = absl::ZeroDuration();
};

class DnsResolver {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<DnsAnswer>)>;
  // Identifies one Resolve() for Cancel(); never 0.
  using QueryId = uint64_t;

  // `loop` is borrowed and must outlive the resolver. Errors:
  // FAILED_PRECONDITION (resolv.conf has no nameserver), INVALID_ARGUMENT
  // (a nameserver that is not IP[:PORT], attempts < 1, timeout <= 0).
  static absl::StatusOr<std::unique_ptr<DnsResolver>> Create(
      EventLoop* loop, const DnsResolverOptions& options);

  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;
  // Cancels every pending query: their callbacks never run.
  ~DnsResolver();

  // Looks up `host` (a name, or a numeric IPv4/IPv6 address without
  // brackets) and answers with its addresses on `port`. `callback` is
  // called exactly once, later, on the loop thread, unless cancelled.
  QueryId Resolve(absl::string_view host, uint16_t port, Callback callback);

  // The query's callback will not run. True if it was still pending; false
  // if it had already been answered, cancelled, or never existed.
  bool Cancel(QueryId id);

  // Queries started and not yet answered or cancelled.
  size_t pending() const { return queries_.size(); }

 private:
  struct Query;
  struct EvdnsBaseDeleter {
    void operator()(evdns_base* base) const;
  };

  DnsResolver(EventLoop* loop, evdns_base* base);
  static void OnEvdnsAnswer(int result, char type, int count, int ttl,
                            void* addresses, void* arg);
  void Finish(Query* query);
  absl::StatusOr<DnsAnswer> Combine(const Query& query) const;

  EventLoop* loop_;
  std::unique_ptr<evdns_base, EvdnsBaseDeleter> base_;
  // Where answers come from, for error messages.
  std::string source_;
  // Expires with the resolver: posted answers check it.
  std::shared_ptr<bool> alive_;
  QueryId next_id_ = 1;
  // Queries waiting for evdns. A Query is owned by this map until its
  // answer or cancellation; after cancellation it is owned by the evdns
  // callbacks still due, the last of which deletes it.
  std::map<QueryId, Query*> queries_;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_DNS_H_
