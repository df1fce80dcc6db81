#include "transport/dns.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bevrpc::transport {
namespace {

constexpr int kA = 0;
constexpr int kAaaa = 1;
constexpr const char* kFamilyName[2] = {"A", "AAAA"};

SocketAddress FromIpv4(const void* addr, uint16_t port) {
  SocketAddress out;
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  std::memcpy(&sin->sin_addr, addr, sizeof(sin->sin_addr));
  out.length = sizeof(sockaddr_in);
  return out;
}

SocketAddress FromIpv6(const void* addr, uint16_t port) {
  SocketAddress out;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  std::memcpy(&sin6->sin6_addr, addr, sizeof(sin6->sin6_addr));
  out.length = sizeof(sockaddr_in6);
  return out;
}

bool SameAddress(const SocketAddress& a, const SocketAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

bool IsNotFound(int result) {
  return result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA ||
         result == DNS_ERR_NONE;  // NONE here means: no addresses.
}

}  // namespace

struct DnsResolver::Query {
  struct Family {
    Query* query = nullptr;
    int index = 0;
    // evdns's handle while its callback is due; null once it has run.
    evdns_request* request = nullptr;
    int result = DNS_ERR_NONE;
    std::vector<SocketAddress> addresses;
    int ttl = 0;
  };

  // Null once cancelled (or the resolver is gone).
  DnsResolver* owner = nullptr;
  QueryId id = 0;
  std::string host;
  uint16_t port = 0;
  Callback callback;
  Family family[2];
  // evdns callbacks still to come; the Query lives until they have.
  int due = 0;
  // Answers that need no query (numeric hosts, names evdns refuses).
  bool has_immediate = false;
  absl::StatusOr<DnsAnswer> immediate = absl::UnknownError("unset");
};

void DnsResolver::EvdnsBaseDeleter::operator()(evdns_base* base) const {
  // Our queries were cancelled first; 0 = drop anything else silently.
  evdns_base_free(base, 0);
}

absl::StatusOr<std::unique_ptr<DnsResolver>> DnsResolver::Create(
    EventLoop* loop, const DnsResolverOptions& options) {
  if (options.attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("dns attempts ", options.attempts, " must be >= 1"));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dns timeout ", absl::FormatDuration(options.timeout),
        " must be > 0"));
  }
  evdns_base* raw;
  std::string source;
  if (options.nameserver.empty()) {
    raw = evdns_base_new(loop->base(), EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                           EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (raw == nullptr) {
      return absl::FailedPreconditionError(
          "dns: /etc/resolv.conf is missing or lists no nameserver (name "
          "one explicitly, e.g. dns://IP:PORT/HOST:PORT)");
    }
    source = "the nameservers of /etc/resolv.conf";
  } else {
    raw = evdns_base_new(loop->base(), EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (raw == nullptr) return absl::InternalError("evdns_base_new failed");
    if (evdns_base_nameserver_ip_add(raw, options.nameserver.c_str()) != 0) {
      evdns_base_free(raw, 0);
      return absl::InvalidArgumentError(
          absl::StrCat("dns: nameserver \"", options.nameserver,
                       "\" is not IP[:PORT] or [IPV6]:PORT"));
    }
    source = absl::StrCat("nameserver ", options.nameserver);
  }
  std::unique_ptr<DnsResolver> r(new DnsResolver(loop, raw));
  r->source_ = std::move(source);
  const std::string timeout =
      absl::StrFormat("%.3f", absl::ToDoubleSeconds(options.timeout));
  const std::string attempts = absl::StrCat(options.attempts);
  if (evdns_base_set_option(raw, "timeout:", timeout.c_str()) != 0 ||
      evdns_base_set_option(raw, "attempts:", attempts.c_str()) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dns: evdns rejected timeout ", timeout, " or attempts ", attempts));
  }
  return r;
}

DnsResolver::DnsResolver(EventLoop* loop, evdns_base* base)
    : loop_(loop), base_(base), alive_(std::make_shared<bool>(true)) {}

DnsResolver::~DnsResolver() {
  while (!queries_.empty()) Cancel(queries_.begin()->first);
  base_.reset();
}

DnsResolver::QueryId DnsResolver::Resolve(absl::string_view host,
                                          uint16_t port, Callback callback) {
  auto* q = new Query;
  q->owner = this;
  q->id = next_id_++;
  q->host = std::string(host);
  q->port = port;
  q->callback = std::move(callback);
  queries_[q->id] = q;

  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, q->host.c_str(), &v4) == 1) {
    q->immediate = DnsAnswer{{FromIpv4(&v4, port)}, absl::ZeroDuration()};
  } else if (inet_pton(AF_INET6, q->host.c_str(), &v6) == 1) {
    q->immediate = DnsAnswer{{FromIpv6(&v6, port)}, absl::ZeroDuration()};
  } else if (q->host.empty()) {
    q->immediate = absl::InvalidArgumentError("dns: empty host name");
  } else {
    for (int i : {kA, kAaaa}) {
      Query::Family& f = q->family[i];
      f.query = q;
      f.index = i;
      f.request = (i == kA ? evdns_base_resolve_ipv4 : evdns_base_resolve_ipv6)(
          base_.get(), q->host.c_str(), 0, &DnsResolver::OnEvdnsAnswer, &f);
      if (f.request != nullptr) ++q->due;
    }
    if (q->due == 2) return q->id;
    // evdns refused the name (too long, bad label) before sending anything.
    for (Query::Family& f : q->family) {
      if (f.request != nullptr) evdns_cancel_request(base_.get(), f.request);
    }
    q->immediate = absl::InvalidArgumentError(
        absl::StrCat("dns: evdns cannot look up \"", q->host, "\""));
  }
  q->has_immediate = true;
  // Answer on a later loop turn; skipped if cancelled or destroyed by then.
  // If a half-started lookup was cancelled above, whichever of this task
  // and that cancellation's callback comes last finishes the query.
  loop_->Post([alive = std::weak_ptr<bool>(alive_), this, id = q->id] {
    if (alive.expired()) return;
    auto it = queries_.find(id);
    if (it == queries_.end() || it->second->due != 0) return;
    Finish(it->second);
  });
  return q->id;
}

bool DnsResolver::Cancel(QueryId id) {
  auto it = queries_.find(id);
  if (it == queries_.end()) return false;
  Query* q = it->second;
  queries_.erase(it);
  q->owner = nullptr;
  q->callback = nullptr;
  // Each cancelled request still gets its callback later (DNS_ERR_CANCEL,
  // or its answer if one was already scheduled); the last one deletes q.
  for (Query::Family& f : q->family) {
    if (f.request != nullptr) evdns_cancel_request(base_.get(), f.request);
  }
  if (q->due == 0) delete q;
  return true;
}

void DnsResolver::OnEvdnsAnswer(int result, char type, int count, int ttl,
                                void* addresses, void* arg) {
  auto* f = static_cast<Query::Family*>(arg);
  Query* q = f->query;
  f->request = nullptr;  // evdns frees it after this callback.
  --q->due;
  if (q->owner == nullptr) {
    if (q->due == 0) delete q;
    return;
  }
  f->result = result;
  f->ttl = ttl;
  if (result == DNS_ERR_NONE && addresses != nullptr) {
    const bool v4 = type == DNS_IPv4_A;
    const size_t size = v4 ? 4 : 16;
    for (int i = 0; i < count; ++i) {
      const char* a = static_cast<const char*>(addresses) + i * size;
      f->addresses.push_back(v4 ? FromIpv4(a, q->port) : FromIpv6(a, q->port));
    }
  }
  if (q->due == 0) q->owner->Finish(q);
}

void DnsResolver::Finish(Query* q) {
  queries_.erase(q->id);
  Callback callback = std::move(q->callback);
  absl::StatusOr<DnsAnswer> result =
      q->has_immediate ? std::move(q->immediate) : Combine(*q);
  delete q;
  // Last: the callback may destroy this resolver.
  callback(std::move(result));
}

absl::StatusOr<DnsAnswer> DnsResolver::Combine(const Query& q) const {
  DnsAnswer answer;
  answer.min_ttl = absl::InfiniteDuration();
  for (const Query::Family& f : q.family) {
    if (f.result != DNS_ERR_NONE || f.addresses.empty()) continue;
    for (const SocketAddress& a : f.addresses) {
      auto same = [&a](const SocketAddress& b) { return SameAddress(a, b); };
      if (std::none_of(answer.addresses.begin(), answer.addresses.end(), same)) {
        answer.addresses.push_back(a);
      }
    }
    answer.min_ttl = std::min(answer.min_ttl, absl::Seconds(f.ttl));
  }
  if (!answer.addresses.empty()) return answer;

  const int a = q.family[kA].result;
  const int aaaa = q.family[kAaaa].result;
  if (IsNotFound(a) && IsNotFound(aaaa)) {
    if (a == DNS_ERR_NOTEXIST || aaaa == DNS_ERR_NOTEXIST) {
      return absl::NotFoundError(absl::StrCat(
          "dns: \"", q.host, "\" does not exist (NXDOMAIN from ", source_,
          ")"));
    }
    return absl::NotFoundError(absl::StrCat("dns: \"", q.host,
                                            "\" has no A or AAAA records (",
                                            source_, ")"));
  }
  std::string causes;
  for (int i : {kA, kAaaa}) {
    int r = q.family[i].result;
    if (IsNotFound(r)) continue;
    // evdns reports SERVFAIL as a timeout once its retries are spent.
    absl::StrAppend(&causes, causes.empty() ? "" : "; ", kFamilyName[i], ": ",
                    evdns_err_to_string(r),
                    r == DNS_ERR_TIMEOUT ? " (or SERVFAIL)" : "");
  }
  return absl::UnavailableError(absl::StrCat(
      "dns: no answer for \"", q.host, "\" from ", source_, ": ", causes));
}

}  // namespace bevrpc::transport
