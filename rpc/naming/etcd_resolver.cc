#include "rpc/naming/etcd_resolver.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/naming/etcd_registry.h"
#include "rpc/naming/internal/backoff.h"

namespace bevrpc::naming {
namespace {

class EtcdResolver : public Resolver {
 public:
  EtcdResolver(const Target& target, transport::EventLoop* loop,
               const ResolverOptions& options,
               const EtcdClientOptions& client_options)
      : loop_(loop),
        target_(target),
        prefix_(target.prefix),
        range_end_(PrefixEnd(target.prefix)),
        backoff_(options.etcd_initial_backoff, options.etcd_max_backoff),
        retry_timer_(loop) {
    EtcdClientOptions o = client_options;
    o.request_timeout = options.etcd_request_timeout;
    // Create() fails only for an empty member list, which ParseTarget
    // never produces; Start() reports it if it happens anyway.
    auto client = EtcdClient::Create(loop, target.etcd_members, o);
    if (client.ok()) client_ = *std::move(client);
  }

  void Start(Listener listener) override {
    listener_ = std::move(listener);
    retry_timer_.Start(absl::ZeroDuration(), [this] {
      if (client_ == nullptr) {
        listener_(absl::InvalidArgumentError(absl::StrCat(
            "etcd target ", target_.ToString(), " names no etcd member")));
        return;
      }
      List();
    });
  }

 private:
  // Range over the prefix, report, then watch from there.
  void List() {
    watch_.reset();
    client_->Range(prefix_, range_end_, [this](absl::StatusOr<EtcdRange> r) {
      if (!r.ok()) return Failed(r.status());
      entries_.clear();
      for (const EtcdKeyValue& kv : r->kvs) Apply(kv.key, &kv.value);
      revision_ = r->revision;
      Report();
      Watch();
    });
  }

  void Watch() {
    auto watch = client_->Watch(
        prefix_, range_end_, revision_ + 1,
        [this](const EtcdWatchUpdate& u) { OnUpdate(u); },
        [this](absl::Status s) { Failed(std::move(s)); });
    if (!watch.ok()) return Failed(watch.status());
    watch_ = *std::move(watch);
  }

  void OnUpdate(const EtcdWatchUpdate& u) {
    if (u.canceled) {
      if (u.compact_revision > 0) {
        std::fprintf(stderr,
                     "bevrpc: etcd %s: watch from revision %lld was "
                     "compacted (now %lld); listing again\n",
                     target_.ToString().c_str(),
                     static_cast<long long>(revision_ + 1),
                     static_cast<long long>(u.compact_revision));
        // Destroys the watch inside its own callback: allowed.
        List();
        return;
      }
      return Failed(absl::UnavailableError(
          absl::StrCat("etcd cancelled the watch: ", u.cancel_reason)));
    }
    if (u.created) backoff_.Reset();
    if (u.events.empty()) return;
    for (const EtcdEvent& e : u.events) {
      Apply(e.kv.key, e.type == EtcdEvent::Type::kPut ? &e.kv.value : nullptr);
      revision_ = std::max(revision_, e.kv.mod_revision);
    }
    Report();
  }

  // A PUT (value) or DELETE (null) of `key`.
  void Apply(const std::string& key, const std::string* value) {
    if (value == nullptr) {
      entries_.erase(key);
      return;
    }
    absl::StatusOr<EndpointInfo> info = ParseRegistryValue(*value);
    if (!info.ok()) {
      std::fprintf(stderr, "bevrpc: etcd %s: skipping key %s: %s\n",
                   target_.ToString().c_str(), key.c_str(),
                   std::string(info.status().message()).c_str());
      entries_.erase(key);
      return;
    }
    entries_[key] = *std::move(info);
  }

  void Report() {
    EndpointList list;
    for (const auto& [key, info] : entries_) list.push_back(info);
    std::stable_sort(list.begin(), list.end(),
                     [](const EndpointInfo& a, const EndpointInfo& b) {
                       return a.address < b.address;
                     });
    list.erase(std::unique(list.begin(), list.end(),
                           [](const EndpointInfo& a, const EndpointInfo& b) {
                             return a.address == b.address;
                           }),
               list.end());
    if (reported_ && list == last_) return;
    reported_ = true;
    last_ = list;
    listener_(std::move(list));
  }

  void Failed(absl::Status status) {
    watch_.reset();
    if (!reported_) {
      listener_(absl::Status(
          status.code(), absl::StrCat("etcd ", target_.ToString(), ": ",
                                      status.message())));
    }
    absl::Duration delay = backoff_.Next();
    std::fprintf(stderr, "bevrpc: etcd %s: %s; retrying in %s\n",
                 target_.ToString().c_str(), status.ToString().c_str(),
                 absl::FormatDuration(delay).c_str());
    retry_timer_.Start(delay, [this] {
      // Without a list (or a revision to resume from) start over.
      if (!reported_) {
        List();
      } else {
        Watch();
      }
    });
  }

  transport::EventLoop* loop_;
  Target target_;
  std::string prefix_;
  std::string range_end_;
  internal::Backoff backoff_;
  Listener listener_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<EtcdWatch> watch_;
  transport::Timer retry_timer_;
  std::map<std::string, EndpointInfo> entries_;  // by key
  int64_t revision_ = 0;  // last revision seen (range or event)
  bool reported_ = false;
  EndpointList last_;
};

}  // namespace

std::unique_ptr<Resolver> NewEtcdResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options, const EtcdClientOptions& client_options) {
  return std::make_unique<EtcdResolver>(target, loop, options, client_options);
}

}  // namespace bevrpc::naming
