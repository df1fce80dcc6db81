// BearerTokenAuth: a server interceptor (rpc/interceptor.h) that admits a
// call only with a valid `authorization: Bearer <token>` request header.
//
//   absl::StatusOr<std::shared_ptr<BearerTokenAuth>> auth =
//       BearerTokenAuth::FromFile("/etc/acme/tokens", {});
//   options.interceptors.push_back(*auth);
//
// The token file holds one token per line, optionally named: `NAME TOKEN`
// (whitespace between), or `TOKEN` alone (named "token-N", N its line
// number). Blank lines and lines starting with '#' are skipped. Tokens are
// at least 16 bytes of printable ASCII without spaces. The name of the
// token a call presented becomes its principal (ServerCallInfo::principal,
// ServerContext::principal()), which later interceptors (per-tenant
// limits) and handlers use.
//
// A call with no header, another scheme, or a token not in the file fails
// with UNAUTHENTICATED (the CLI exits 80) and a message saying which; the
// handler never runs. Tokens are compared in constant time (every token is
// compared in full, whatever matches). Methods matching `exempt_methods`
// ("pkg.Service/Method" or "pkg.Service/*") pass without a token; by
// default health checks, reflection and server info stay open.
//
// Reload: a thread checks the file every `reload_interval` and, when its
// size, modification time or inode changed, reads it again. A file that
// cannot be read or parsed keeps the tokens in force (logged once per
// change); an empty file admits nobody.
//
// Counted in bevrpc_server_auth_failures_total{reason="missing|scheme|
// invalid"} when a metrics registry is given.
//
// Threading: thread-safe; OnCallStart runs on every I/O loop at once and
// never blocks (the tokens are read under a shared lock).
#ifndef BEVRPC_RPC_AUTH_BEARER_TOKEN_H_
#define BEVRPC_RPC_AUTH_BEARER_TOKEN_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/interceptor.h"
#include "rpc/internal/file_stamp.h"
#include "rpc/metrics/metrics.h"
#include "transport/sync.h"

namespace bevrpc::auth {

struct BearerTokenOptions {
  // Methods that need no token. Default: the built-in health, reflection
  // and server-info services.
  std::vector<std::string> exempt_methods = {
      "bevrpc.health.v1.Health/*", "bevrpc.reflection.v1.ServerReflection/*",
      "bevrpc.server.v1.ServerInfo/*"};
  // How often the file is checked for changes. Default: 1 s.
  absl::Duration reload_interval = absl::Seconds(1);
  // Where the failure counter goes (borrowed; null = not counted).
  // Default: MetricsRegistry::Default().
  metrics::MetricsRegistry* metrics_registry =
      &metrics::MetricsRegistry::Default();
};

// One token and its name.
struct NamedToken {
  std::string name;
  std::string token;
};

class BearerTokenAuth : public ServerInterceptor {
 public:
  // Reads `path` now (an error if it cannot be read or parsed) and starts
  // watching it.
  static absl::StatusOr<std::shared_ptr<BearerTokenAuth>> FromFile(
      std::string path, BearerTokenOptions options);
  // Fixed tokens, no file (tests, embedders with their own source).
  static absl::StatusOr<std::shared_ptr<BearerTokenAuth>> FromTokens(
      std::vector<NamedToken> tokens, BearerTokenOptions options);
  // Parses a token file's contents; INVALID_ARGUMENT naming the line.
  static absl::StatusOr<std::vector<NamedToken>> Parse(
      absl::string_view contents);

  ~BearerTokenAuth() override;

  absl::Status OnCallStart(ServerCallInfo& call, std::any& state) override;

  // Re-reads the file now (what the watcher does on a change). On error
  // the tokens in force stay.
  absl::Status Reload();
  // Tokens in force.
  size_t size() const;

 private:
  struct Failures;
  BearerTokenAuth(std::string path, BearerTokenOptions options);
  void Watch();
  bool Exempt(absl::string_view method) const;

  const std::string path_;
  const BearerTokenOptions options_;
  std::unique_ptr<Failures> failures_;

  mutable Mutex mu_;
  std::shared_ptr<const std::vector<NamedToken>> tokens_ ABSL_GUARDED_BY(mu_);
  // The file as last read.
  internal::FileStamp file_stamp_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  CondVar stop_cv_;
  std::thread watcher_;
};

// True when `a` and `b` are equal; the time taken depends only on their
// lengths, never on where they differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// True when `method` ("pkg.Service/Method") matches `pattern`: the same
// name, "pkg.Service/*" for every method of the service, or "*".
bool MethodMatches(absl::string_view pattern, absl::string_view method);

}  // namespace bevrpc::auth

#endif  // BEVRPC_RPC_AUTH_BEARER_TOKEN_H_
