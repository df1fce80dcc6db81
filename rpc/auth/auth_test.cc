// Unit tests of the bearer-token interceptor (parsing, constant-time
// comparison, exemptions, reload on change) and the client-certificate
// authorizer (rules, specificity, each identity kind).
#include <any>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/auth/bearer_token.h"
#include "rpc/auth/cert_authorizer.h"

namespace bevrpc::auth {
namespace {

constexpr char kTokenA[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kTokenB[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

absl::Status Start(ServerInterceptor& i, const std::string& method,
                   const std::string& authorization,
                   std::string* principal = nullptr,
                   const PeerIdentity* identity = nullptr) {
  Metadata metadata;
  if (!authorization.empty()) metadata["authorization"] = authorization;
  ServerCallInfo info;
  info.method = method;
  info.metadata = &metadata;
  info.peer_identity = identity;
  std::any state;
  absl::Status s = i.OnCallStart(info, state);
  if (principal != nullptr) *principal = info.principal;
  return s;
}

BearerTokenOptions NoMetrics() {
  BearerTokenOptions o;
  o.metrics_registry = nullptr;
  o.reload_interval = absl::Milliseconds(20);
  return o;
}

TEST(BearerTokenTest, ParsesNamedAndUnnamedTokens) {
  auto tokens = BearerTokenAuth::Parse(absl::StrCat(
      "# comment\n\nalice ", kTokenA, "\n  ", kTokenB, "  \n"));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].name, "alice");
  EXPECT_EQ((*tokens)[0].token, kTokenA);
  EXPECT_EQ((*tokens)[1].name, "token-4");
  EXPECT_EQ((*tokens)[1].token, kTokenB);
}

TEST(BearerTokenTest, RefusesBadFilesNamingTheLine) {
  EXPECT_EQ(BearerTokenAuth::Parse("alice short\n").status().message(),
            "line 1 (alice): a token is at least 16 printable ASCII "
            "characters without spaces");
  EXPECT_EQ(BearerTokenAuth::Parse(absl::StrCat("\na b ", kTokenA))
                .status()
                .message(),
            "line 2: expected \"NAME TOKEN\" or \"TOKEN\", got 3 fields");
  EXPECT_EQ(BearerTokenAuth::Parse(
                absl::StrCat("a ", kTokenA, "\na ", kTokenB, "\n"))
                .status()
                .message(),
            "line 2: the name a is used twice");
}

TEST(BearerTokenTest, AdmitsAKnownTokenAndSetsThePrincipal) {
  auto auth = BearerTokenAuth::FromTokens(
      {{"alice", kTokenA}, {"bob", kTokenB}}, NoMetrics());
  ASSERT_TRUE(auth.ok()) << auth.status();
  std::string principal;
  EXPECT_TRUE(Start(**auth, "bevrpc.echo.Echo/Echo",
                    absl::StrCat("Bearer ", kTokenB), &principal)
                  .ok());
  EXPECT_EQ(principal, "bob");
  // The scheme is case-insensitive (RFC 7235).
  EXPECT_TRUE(Start(**auth, "bevrpc.echo.Echo/Echo",
                    absl::StrCat("bearer ", kTokenA), &principal)
                  .ok());
  EXPECT_EQ(principal, "alice");
}

TEST(BearerTokenTest, RefusesMissingWrongSchemeAndUnknownTokens) {
  auto auth = BearerTokenAuth::FromTokens({{"alice", kTokenA}}, NoMetrics());
  ASSERT_TRUE(auth.ok());
  absl::Status s = Start(**auth, "bevrpc.echo.Echo/Echo", "");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(s.message(),
            "bevrpc.echo.Echo/Echo needs a bearer token: no \"authorization: "
            "Bearer <token>\" request header");
  s = Start(**auth, "bevrpc.echo.Echo/Echo", "Basic YWxpY2U6cHc=");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(s.message(), "the authorization header is not \"Bearer <token>\"");
  s = Start(**auth, "bevrpc.echo.Echo/Echo", absl::StrCat("Bearer ", kTokenB));
  EXPECT_EQ(s, absl::UnauthenticatedError("invalid bearer token"));
  // A prefix of a valid token is not valid.
  s = Start(**auth, "bevrpc.echo.Echo/Echo",
            absl::StrCat("Bearer ", std::string(kTokenA).substr(0, 20)));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
}

TEST(BearerTokenTest, ExemptMethodsNeedNoToken) {
  auto auth = BearerTokenAuth::FromTokens({{"alice", kTokenA}}, NoMetrics());
  ASSERT_TRUE(auth.ok());
  EXPECT_TRUE(Start(**auth, "bevrpc.health.v1.Health/Check", "").ok());
  EXPECT_TRUE(
      Start(**auth, "bevrpc.reflection.v1.ServerReflection/ListServices", "")
          .ok());
  EXPECT_EQ(Start(**auth, "bevrpc.health.v1.HealthX/Check", "").code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(BearerTokenTest, ReloadsTheFileWhenItChanges) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/tokens-reload");
  {
    std::ofstream(path) << "alice " << kTokenA << "\n";
  }
  auto auth = BearerTokenAuth::FromFile(path, NoMetrics());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(Start(**auth, "a.B/C", absl::StrCat("Bearer ", kTokenA)).ok());
  // Replaced atomically (rename), as deploy tools do.
  {
    std::ofstream(path + ".new") << "bob " << kTokenB << "\n";
  }
  ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!Start(**auth, "a.B/C", absl::StrCat("Bearer ", kTokenB)).ok()) {
    ASSERT_LT(absl::Now(), deadline) << "the new token never took effect";
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(Start(**auth, "a.B/C", absl::StrCat("Bearer ", kTokenA)).code(),
            absl::StatusCode::kUnauthenticated);
  // A broken file keeps the tokens in force.
  {
    std::ofstream(path + ".new") << "bob short\n";
  }
  ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  EXPECT_FALSE((*auth)->Reload().ok());
  EXPECT_TRUE(Start(**auth, "a.B/C", absl::StrCat("Bearer ", kTokenB)).ok());
  EXPECT_EQ((*auth)->size(), 1u);
}

TEST(BearerTokenTest, FromFileFailsOnAMissingFile) {
  auto auth = BearerTokenAuth::FromFile("/nonexistent/tokens", NoMetrics());
  EXPECT_EQ(auth.status().code(), absl::StatusCode::kNotFound);
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

PeerIdentity Identity() {
  PeerIdentity id;
  id.subject = "CN=client-a,O=Acme";
  id.common_name = "client-a";
  id.dns_names = {"a.acme.internal"};
  id.ip_addresses = {"10.0.0.7"};
  id.uris = {"spiffe://acme/ns/prod/sa/api"};
  return id;
}

TEST(CertAuthorizerTest, ParsesRules) {
  auto rules = CertAuthorizer::Parse(
      "# who may call what\n"
      "acme.Kv/Put cn:writer uri:spiffe://acme/ns/prod/sa/api\n"
      "acme.Kv/* * \n"
      "* subject:CN=admin,O=Acme Inc\n");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u);
  EXPECT_EQ((*rules)[0].allowed,
            (std::vector<std::string>{"cn:writer",
                                      "uri:spiffe://acme/ns/prod/sa/api"}));
  EXPECT_EQ((*rules)[2].allowed,
            (std::vector<std::string>{"subject:CN=admin,O=Acme Inc"}));
  EXPECT_EQ(CertAuthorizer::Parse("a.B/C\n").status().message(),
            "line 1: a.B/C names no identity (use * for any verified "
            "certificate)");
  EXPECT_EQ(CertAuthorizer::Parse("a.B/C email:x@y\n").status().message(),
            "line 1: \"email:x@y\" is not cn:, dns:, ip:, uri:, subject: or *");
}

TEST(CertAuthorizerTest, TheMostSpecificRuleDecides) {
  auto rules = CertAuthorizer::Parse(
      "acme.Kv/Put cn:writer\n"
      "acme.Kv/* cn:client-a\n"
      "* dns:nobody\n");
  ASSERT_TRUE(rules.ok());
  CertAuthorizer authz(*rules);
  const PeerIdentity id = Identity();
  std::string principal;
  EXPECT_TRUE(Start(authz, "acme.Kv/Get", "", &principal, &id).ok());
  EXPECT_EQ(principal, "CN=client-a,O=Acme");
  absl::Status s = Start(authz, "acme.Kv/Put", "", nullptr, &id);
  EXPECT_EQ(s, absl::PermissionDeniedError(
                   "certificate CN=client-a,O=Acme is not allowed to call "
                   "acme.Kv/Put (rule acme.Kv/Put)"));
  EXPECT_EQ(Start(authz, "other.Svc/Do", "", nullptr, &id).code(),
            absl::StatusCode::kPermissionDenied);
  // No certificate at all.
  s = Start(authz, "acme.Kv/Get", "", nullptr, nullptr);
  EXPECT_EQ(s, absl::PermissionDeniedError(
                   "acme.Kv/Get needs a client certificate (mutual TLS); "
                   "none was presented"));
}

TEST(CertAuthorizerTest, EachIdentityKindMatches) {
  const PeerIdentity id = Identity();
  for (const char* allowed :
       {"cn:client-a", "dns:a.acme.internal", "ip:10.0.0.7",
        "uri:spiffe://acme/ns/prod/sa/api", "subject:CN=client-a,O=Acme",
        "*"}) {
    CertRule rule{"*", {allowed}};
    EXPECT_TRUE(CertAuthorizer::Admits(rule, id)) << allowed;
  }
  for (const char* allowed : {"cn:client-b", "dns:b.acme.internal",
                              "ip:10.0.0.8", "subject:CN=client-a"}) {
    CertRule rule{"*", {allowed}};
    EXPECT_FALSE(CertAuthorizer::Admits(rule, id)) << allowed;
  }
}

TEST(CertAuthorizerTest, MethodsWithoutARuleAreNotRestricted) {
  CertAuthorizer authz(std::vector<CertRule>{{"acme.Kv/Put", {"cn:writer"}}});
  EXPECT_TRUE(Start(authz, "acme.Kv/Get", "", nullptr, nullptr).ok());
}

}  // namespace
}  // namespace bevrpc::auth
