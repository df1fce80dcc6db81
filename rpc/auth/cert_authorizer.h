// CertAuthorizer: a server interceptor (rpc/interceptor.h) that lets a
// call through only when the client's verified TLS certificate
// (ServerCallInfo::peer_identity, mutual TLS) is on the allow-list of the
// method it calls; otherwise PERMISSION_DENIED naming the method and who
// the certificate says the caller is.
//
//   absl::StatusOr<std::vector<CertRule>> rules = CertAuthorizer::Parse(
//       "bevrpc.kv.Kv/Put  cn:writer  uri:spiffe://acme/ns/prod/sa/api\n"
//       "bevrpc.kv.Kv/*    cn:writer  cn:reader\n");
//   options.interceptors.push_back(std::make_shared<CertAuthorizer>(*rules));
//
// Rules: a method pattern ("pkg.Service/Method", "pkg.Service/*" or "*")
// and the identities it admits:
//   cn:NAME          the subject's common name
//   dns:NAME         a DNS subject alternative name
//   ip:ADDRESS       an IP subject alternative name
//   uri:URI          a URI subject alternative name (SPIFFE ids)
//   subject:DN       the whole subject, RFC 2253 ("CN=a,O=Acme"); takes
//                    the rest of its line, so it comes last
//   *                any verified certificate
// The most specific rule for a method decides (its exact name, then its
// service's "/*", then "*"); a method no rule names is not restricted.
// The principal is set to the certificate's subject when no interceptor
// before this one set it, so per-tenant limits can key on it.
//
// Threading: immutable after construction; thread-safe.
#ifndef BEVRPC_RPC_AUTH_CERT_AUTHORIZER_H_
#define BEVRPC_RPC_AUTH_CERT_AUTHORIZER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/interceptor.h"

namespace bevrpc::auth {

struct CertRule {
  std::string method_pattern;
  // "cn:...", "dns:...", "ip:...", "uri:...", "subject:..." or "*".
  std::vector<std::string> allowed;
};

class CertAuthorizer : public ServerInterceptor {
 public:
  explicit CertAuthorizer(std::vector<CertRule> rules);

  // One rule per line, "PATTERN IDENTITY..."; blank lines and '#' comments
  // skipped. INVALID_ARGUMENT naming the line for an unknown identity
  // kind or a pattern without identities.
  static absl::StatusOr<std::vector<CertRule>> Parse(
      absl::string_view contents);
  static absl::StatusOr<std::vector<CertRule>> ParseFile(
      const std::string& path);

  absl::Status OnCallStart(ServerCallInfo& call, std::any& state) override;

  // The rule that decides for `method`, or null (not restricted).
  const CertRule* RuleFor(absl::string_view method) const;
  // True when `identity` matches one of `rule`'s allowed entries.
  static bool Admits(const CertRule& rule, const PeerIdentity& identity);

 private:
  const std::vector<CertRule> rules_;
};

}  // namespace bevrpc::auth

#endif  // BEVRPC_RPC_AUTH_CERT_AUTHORIZER_H_
