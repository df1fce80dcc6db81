#include "rpc/naming/dns_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "transport/address.h"
#include "transport/dns.h"

namespace bevrpc::naming {
namespace {

using Clock = std::chrono::steady_clock;

// Retries after failures never come faster than this, even with a zero
// dns_min_refresh_interval.
constexpr absl::Duration kMinBackoff = absl::Milliseconds(10);

bool IsNumericIp(const std::string& host) {
  in6_addr buf;
  return inet_pton(AF_INET, host.c_str(), &buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &buf) == 1;
}

EndpointList ToEndpoints(const std::vector<transport::SocketAddress>& addrs) {
  EndpointList list;
  for (const transport::SocketAddress& a : addrs) {
    EndpointInfo e;
    e.address = a.ToString();
    list.push_back(std::move(e));
  }
  return list;
}

class DnsNameResolver : public Resolver {
 public:
  DnsNameResolver(const Target& target, transport::EventLoop* loop,
                  const ResolverOptions& options,
                  std::unique_ptr<transport::DnsResolver> dns)
      : loop_(loop),
        target_(target.ToString()),
        host_(target.endpoints[0].host),
        port_(target.endpoints[0].port),
        options_(options),
        dns_(std::move(dns)),
        timer_(loop),
        backoff_(InitialBackoff()) {}

  void Start(Listener listener) override {
    listener_ = std::move(listener);
    if (dns_ == nullptr) {
      // A numeric host: one list, on a later loop turn.
      loop_->Post([alive = std::weak_ptr<bool>(alive_), this] {
        if (alive.expired()) return;
        EndpointInfo e;
        e.address = NumericAddress();
        listener_(EndpointList{e});
      });
      return;
    }
    Lookup();  // Answers never arrive inline.
  }

  void RequestRefresh() override {
    if (dns_ == nullptr || !listener_) return;
    if (in_flight_) {
      // Its answer may predate the failure: look again after it.
      refresh_requested_ = true;
      return;
    }
    Clock::time_point at = Clock::now();
    if (last_done_.has_value()) {
      at = std::max(at, *last_done_ + absl::ToChronoNanoseconds(
                                          options_.dns_min_refresh_interval));
    }
    if (timer_.pending() && next_at_ <= at) return;  // Sooner already.
    ScheduleAt(at);
  }

 private:
  absl::Duration InitialBackoff() const {
    return std::max(options_.dns_min_refresh_interval, kMinBackoff);
  }

  // Canonical text, as DNS answers are printed ("0::1" -> "[::1]:P").
  std::string NumericAddress() const {
    char text[INET6_ADDRSTRLEN];
    in6_addr buf;
    if (inet_pton(AF_INET, host_.c_str(), &buf) == 1) {
      inet_ntop(AF_INET, &buf, text, sizeof(text));
      return absl::StrCat(text, ":", port_);
    }
    inet_pton(AF_INET6, host_.c_str(), &buf);
    inet_ntop(AF_INET6, &buf, text, sizeof(text));
    return absl::StrCat("[", text, "]:", port_);
  }

  void ScheduleAt(Clock::time_point at) {
    next_at_ = at;
    timer_.Start(absl::FromChrono(at - Clock::now()), [this] { Lookup(); });
  }

  void ScheduleIn(absl::Duration after) {
    ScheduleAt(Clock::now() + absl::ToChronoNanoseconds(after));
  }

  void Lookup() {
    timer_.Cancel();
    in_flight_ = true;
    // dns_ is owned: its callbacks never run after this is destroyed.
    dns_->Resolve(host_, port_, [this](absl::StatusOr<transport::DnsAnswer> a) {
      OnAnswer(std::move(a));
    });
  }

  // A RequestRefresh() that came while the lookup was in flight.
  void TakeRefreshRequest() {
    if (!refresh_requested_) return;
    refresh_requested_ = false;
    RequestRefresh();
  }

  void OnAnswer(absl::StatusOr<transport::DnsAnswer> answer) {
    in_flight_ = false;
    last_done_ = Clock::now();
    if (answer.ok()) {
      backoff_ = InitialBackoff();
      failure_logged_ = false;
      ScheduleIn(options_.dns_refresh_interval);
      TakeRefreshRequest();
      EndpointList list = ToEndpoints(answer->addresses);
      if (have_list_ && list == last_) return;
      have_list_ = true;
      last_ = list;
      listener_(std::move(list));  // Last: the listener may destroy us.
      return;
    }
    ScheduleIn(backoff_);
    backoff_ = std::min(backoff_ * 2, options_.dns_refresh_interval);
    TakeRefreshRequest();
    const absl::Status status(
        answer.status().code(),
        absl::StrCat("resolving ", target_, ": ", answer.status().message()));
    if (!have_list_) {
      listener_(status);  // Last: the listener may destroy us.
      return;
    }
    if (!failure_logged_) {
      failure_logged_ = true;
      std::fprintf(stderr, "bevrpc: %s; keeping the last %zu endpoints\n",
                   std::string(status.message()).c_str(), last_.size());
    }
  }

  transport::EventLoop* const loop_;
  const std::string target_;
  const std::string host_;
  const uint16_t port_;
  const ResolverOptions options_;
  // Null for a numeric host.
  const std::unique_ptr<transport::DnsResolver> dns_;
  transport::Timer timer_;
  Listener listener_;

  bool in_flight_ = false;
  bool refresh_requested_ = false;  // While in flight.
  std::optional<Clock::time_point> last_done_;
  Clock::time_point next_at_;  // When timer_ fires, if pending.
  absl::Duration backoff_;
  bool failure_logged_ = false;
  bool have_list_ = false;
  EndpointList last_;
  // Expires with the resolver: the posted numeric list checks it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Resolver>> NewDnsResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options) {
  if (target.scheme != Target::Scheme::kDns || target.endpoints.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "NewDnsResolver: \"", target.ToString(),
        "\" is not a dns:///HOST:PORT target"));
  }
  if (options.dns_refresh_interval <= absl::ZeroDuration() ||
      options.dns_min_refresh_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dns_refresh_interval ", absl::FormatDuration(options.dns_refresh_interval),
        " must be > 0 and dns_min_refresh_interval ",
        absl::FormatDuration(options.dns_min_refresh_interval),
        " must be >= 0"));
  }
  std::unique_ptr<transport::DnsResolver> dns;
  if (!IsNumericIp(target.endpoints[0].host)) {
    transport::DnsResolverOptions dns_options;
    if (!target.dns_server.host.empty()) {
      if (!IsNumericIp(target.dns_server.host)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", target.ToString(), "\": the DNS server \"",
            target.dns_server.host, "\" must be a numeric IP address"));
      }
      dns_options.nameserver = target.dns_server.ToString();
    }
    dns_options.timeout = options.dns_timeout;
    dns_options.attempts = options.dns_attempts;
    absl::StatusOr<std::unique_ptr<transport::DnsResolver>> created =
        transport::DnsResolver::Create(loop, dns_options);
    if (!created.ok()) {
      return absl::Status(created.status().code(),
                          absl::StrCat("\"", target.ToString(), "\": ",
                                       created.status().message()));
    }
    dns = *std::move(created);
  }
  return std::unique_ptr<Resolver>(
      new DnsNameResolver(target, loop, options, std::move(dns)));
}

}  // namespace bevrpc::naming
