#include "rpc/naming/registrar.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/naming/etcd_registry.h"

namespace bevrpc::naming {
namespace {

constexpr absl::string_view kEtcdForm = "etcd://HOST:PORT[,HOST:PORT...]/PREFIX";

void Log(const std::string& key, absl::string_view what) {
  std::fprintf(stderr, "bevrpc: registrar %s: %s\n", key.c_str(),
               std::string(what).c_str());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Registrar>> Registrar::Create(
    transport::EventLoop* loop, absl::string_view target,
    absl::string_view advertise, const RegistrarOptions& options) {
  absl::StatusOr<Target> t = ParseTarget(target);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("registration target: ", t.status().message(),
                     " (registration accepts only ", kEtcdForm, ")"));
  }
  if (t->scheme != Target::Scheme::kEtcd) {
    return absl::InvalidArgumentError(
        absl::StrCat("registration target \"", target, "\" is not ",
                     kEtcdForm));
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(advertise);
  if (!hp.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("advertised address: ", hp.status().message()));
  }
  if (options.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("registration TTL ", absl::FormatDuration(options.ttl),
                     " is under the 1 s minimum"));
  }
  EtcdClientOptions client_options;
  client_options.request_timeout = options.request_timeout;
  absl::StatusOr<std::unique_ptr<EtcdClient>> client =
      EtcdClient::Create(loop, t->etcd_members, client_options);
  if (!client.ok()) return client.status();
  EndpointInfo info;
  info.address = hp->ToString();
  info.weight = options.weight;
  info.zone = options.zone;
  info.id = options.id;
  info.version = options.version;
  return std::unique_ptr<Registrar>(
      new Registrar(loop, *std::move(client), RegistryKey(t->prefix, info.address),
                    RegistryValueJson(info), options));
}

Registrar::Registrar(transport::EventLoop* loop,
                     std::unique_ptr<EtcdClient> client, std::string key,
                     std::string value, const RegistrarOptions& options)
    : loop_(loop),
      client_(std::move(client)),
      key_(std::move(key)),
      value_(std::move(value)),
      options_(options),
      ttl_seconds_(absl::ToInt64Seconds(options.ttl)),
      backoff_(options.initial_backoff, options.max_backoff),
      timer_(loop) {}

Registrar::~Registrar() = default;

void Registrar::Start() {
  timer_.Start(absl::ZeroDuration(), [this] { Grant(); });
}

void Registrar::Grant() {
  client_->LeaseGrant(ttl_seconds_, [this](absl::StatusOr<EtcdLease> lease) {
    if (stopped_) {
      // Revoke() came while granting: do not leave the lease behind.
      if (lease.ok()) {
        client_->LeaseRevoke(lease->id, options_.revoke_timeout,
                             [](absl::Status) {});
      }
      return;
    }
    if (!lease.ok()) return RetryLater("lease grant", lease.status(),
                                       &Registrar::Grant);
    lease_ = lease->id;
    Put();
  });
}

void Registrar::Put() {
  client_->Put(key_, value_, lease_, [this](absl::StatusOr<int64_t> rev) {
    if (stopped_) return;
    if (!rev.ok()) {
      if (rev.status().code() == absl::StatusCode::kNotFound) {
        return LeaseLost(rev.status().message());
      }
      return RetryLater("put", rev.status(), &Registrar::Put);
    }
    if (!registered_) {
      Log(key_, absl::StrCat("registered with lease ", lease_, ", TTL ",
                             ttl_seconds_, " s"));
    }
    registered_ = true;
    backoff_.Reset();
    timer_.Start(options_.ttl / 3, [this] { KeepAlive(); });
  });
}

void Registrar::KeepAlive() {
  client_->LeaseKeepAlive(lease_, [this](absl::StatusOr<int64_t> ttl) {
    if (stopped_) return;
    if (!ttl.ok()) {
      if (ttl.status().code() == absl::StatusCode::kNotFound) {
        return LeaseLost(ttl.status().message());
      }
      return RetryLater("lease keep-alive", ttl.status(),
                        &Registrar::KeepAlive);
    }
    if (*ttl <= 0) return LeaseLost("keep-alive says the lease is gone");
    backoff_.Reset();
    timer_.Start(options_.ttl / 3, [this] { KeepAlive(); });
  });
}

void Registrar::LeaseLost(absl::string_view why) {
  Log(key_, absl::StrCat("lease ", lease_, " lost (", why,
                         "); granting a new one"));
  lease_ = 0;
  registered_ = false;
  Grant();
}

void Registrar::RetryLater(absl::string_view what, const absl::Status& status,
                           void (Registrar::*step)()) {
  absl::Duration delay = backoff_.Next();
  // A keep-alive must not wait past the lease's expiry for its retry.
  if (step == &Registrar::KeepAlive) delay = std::min(delay, options_.ttl / 3);
  Log(key_, absl::StrCat(what, " failed: ", status.ToString(), "; retrying in ",
                         absl::FormatDuration(delay)));
  timer_.Start(delay, [this, step] { (this->*step)(); });
}

void Registrar::Revoke(absl::AnyInvocable<void()> done) {
  stopped_ = true;
  timer_.Cancel();
  registered_ = false;
  int64_t lease = lease_;
  lease_ = 0;
  if (lease == 0) {
    loop_->Post([alive = std::weak_ptr<int>(alive_),
                 done = std::move(done)]() mutable {
      if (!alive.expired()) done();
    });
    return;
  }
  client_->LeaseRevoke(
      lease, options_.revoke_timeout,
      [this, lease, done = std::move(done)](absl::Status s) mutable {
        Log(key_, s.ok() ? absl::StrCat("lease ", lease, " revoked")
                         : absl::StrCat("revoking lease ", lease,
                                        " failed: ", s.ToString()));
        done();
      });
}

}  // namespace bevrpc::naming
