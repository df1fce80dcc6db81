// Registrar: a server's registration in the etcd registry, kept alive with a
// lease, so that etcd:// resolvers (rpc/naming/etcd_resolver.h) find it.
//
//   RegistrarOptions options;
//   options.ttl = absl::Seconds(10);
//   auto reg = naming::Registrar::Create(loop, "etcd://127.0.0.1:2379/svc/echo",
//                                        "10.0.0.1:8080", options).value();
//   reg->Start();                                  // on loop
//   ...
//   reg->Revoke([] { /* key gone (or 1 s passed) */ });  // before draining
//
// What it does: grant a lease of `ttl`, put PREFIX + ADVERTISE (value JSON:
// rpc/naming/etcd_registry.h) with that lease, and keep the lease alive
// every ttl/3. If the lease is lost (keep-alive answers TTL 0 or "not
// found": etcd was down longer than the TTL, or someone revoked it) it
// grants a new one and puts the key again. Every failure is logged to
// stderr and retried with jittered exponential backoff; nothing is fatal
// after Create(). If the process dies, the key goes when the lease expires
// (at most `ttl` later).
//
// Threading: Create(), Start(), Revoke() and the destructor run on `loop`'s
// thread (or before it runs). `done` runs on that thread, exactly once,
// never inline from Revoke(), never after destruction. The destructor stops
// everything (without revoking: call Revoke() first for a clean exit).
#ifndef BEVRPC_RPC_NAMING_REGISTRAR_H_
#define BEVRPC_RPC_NAMING_REGISTRAR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/naming/etcd_client.h"
#include "rpc/naming/internal/backoff.h"
#include "rpc/naming/resolver.h"
#include "rpc/naming/target.h"
#include "transport/event_loop.h"

namespace bevrpc::naming {

struct RegistrarOptions {
  // Lease TTL, whole seconds (etcd may raise tiny values to its minimum,
  // about 2 s for a default single member). Default: 10 s.
  absl::Duration ttl = absl::Seconds(10);
  // Published with the address (EndpointInfo). Defaults: 1, "", "", "".
  uint32_t weight = 1;
  std::string zone;
  std::string id;
  std::string version;
  // Retry backoff after a failure: initial, cap. Defaults: 100 ms, 5 s.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Timeout of each etcd call. Default: 5 s.
  absl::Duration request_timeout = absl::Seconds(5);
  // Revoke() gives up waiting for etcd after this. Default: 1 s.
  absl::Duration revoke_timeout = absl::Seconds(1);
};

// Call only on the loop thread (see the file comment).
class Registrar {
 public:
  // INVALID_ARGUMENT if `target` is not etcd://HOST:PORT[,...]/PREFIX, if
  // `advertise` is not HOST:PORT or [V6]:PORT, or if the TTL is under 1 s.
  // `loop` is borrowed and must outlive the registrar.
  static absl::StatusOr<std::unique_ptr<Registrar>> Create(
      transport::EventLoop* loop, absl::string_view target,
      absl::string_view advertise, const RegistrarOptions& options = {});
  ~Registrar();

  // Starts registering (asynchronously). Call once.
  void Start();
  // Stops keeping the registration alive, revokes the lease (so the key
  // goes at once) and then calls `done` (also when etcd did not answer
  // within revoke_timeout). Call at most once.
  void Revoke(absl::AnyInvocable<void()> done);

  // The key this registrar writes.
  const std::string& key() const { return key_; }
  // The lease currently held (0 = none), and whether the key is believed
  // to be in etcd. For diagnostics and tests.
  int64_t lease_id() const { return lease_; }
  bool registered() const { return registered_; }

 private:
  Registrar(transport::EventLoop* loop, std::unique_ptr<EtcdClient> client,
            std::string key, std::string value,
            const RegistrarOptions& options);
  void Grant();
  void Put();
  void KeepAlive();
  void LeaseLost(absl::string_view why);
  void RetryLater(absl::string_view what, const absl::Status& status,
                  void (Registrar::*step)());

  transport::EventLoop* loop_;
  std::unique_ptr<EtcdClient> client_;
  std::string key_;
  std::string value_;
  RegistrarOptions options_;
  int64_t ttl_seconds_;
  internal::Backoff backoff_;
  transport::Timer timer_;
  int64_t lease_ = 0;
  bool registered_ = false;
  bool stopped_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_REGISTRAR_H_
