#include "rpc/auth/cert_authorizer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "rpc/auth/bearer_token.h"  // MethodMatches
#include "rpc/internal/config_lines.h"
#include "rpc/internal/read_file.h"

namespace bevrpc::auth {
namespace {

// How specific a pattern is: exact 2, service 1, "*" 0.
int Specificity(absl::string_view pattern) {
  if (pattern == "*") return 0;
  if (absl::EndsWith(pattern, "/*")) return 1;
  return 2;
}

bool Contains(const std::vector<std::string>& values, absl::string_view v) {
  return std::find(values.begin(), values.end(), v) != values.end();
}

// One line of a rules file: "PATTERN IDENTITY...".
absl::StatusOr<CertRule> ParseRuleLine(int line_no, absl::string_view line) {
  CertRule rule;
  size_t space = line.find_first_of(" \t");
  rule.method_pattern = std::string(line.substr(0, space));
  absl::string_view rest =
      space == absl::string_view::npos ? "" : line.substr(space);
  while (true) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (rest.empty()) break;
    if (absl::StartsWith(rest, "subject:")) {
      rule.allowed.push_back(
          std::string(absl::StripTrailingAsciiWhitespace(rest)));
      break;
    }
    size_t end = rest.find_first_of(" \t");
    absl::string_view id = rest.substr(0, end);
    rest = end == absl::string_view::npos ? "" : rest.substr(end);
    if (id != "*" && !absl::StartsWith(id, "cn:") &&
        !absl::StartsWith(id, "dns:") && !absl::StartsWith(id, "ip:") &&
        !absl::StartsWith(id, "uri:")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_no, ": \"", id,
          "\" is not cn:, dns:, ip:, uri:, subject: or *"));
    }
    rule.allowed.push_back(std::string(id));
  }
  if (rule.allowed.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", line_no, ": ", rule.method_pattern,
        " names no identity (use * for any verified certificate)"));
  }
  return rule;
}

}  // namespace

CertAuthorizer::CertAuthorizer(std::vector<CertRule> rules)
    : rules_(std::move(rules)) {}

absl::StatusOr<std::vector<CertRule>> CertAuthorizer::Parse(
    absl::string_view contents) {
  std::vector<CertRule> rules;
  absl::Status s = internal::ForEachConfigLine(
      contents, [&](int line_no, absl::string_view line) -> absl::Status {
        absl::StatusOr<CertRule> rule = ParseRuleLine(line_no, line);
        if (!rule.ok()) return rule.status();
        rules.push_back(*std::move(rule));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return rules;
}

absl::StatusOr<std::vector<CertRule>> CertAuthorizer::ParseFile(
    const std::string& path) {
  absl::StatusOr<std::string> contents = internal::ReadFileToString(path);
  if (!contents.ok()) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  absl::StatusOr<std::vector<CertRule>> rules = Parse(*contents);
  if (!rules.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", rules.status().message()));
  }
  return rules;
}

const CertRule* CertAuthorizer::RuleFor(absl::string_view method) const {
  const CertRule* best = nullptr;
  for (const CertRule& rule : rules_) {
    if (!MethodMatches(rule.method_pattern, method)) continue;
    if (best == nullptr || Specificity(rule.method_pattern) >
                               Specificity(best->method_pattern)) {
      best = &rule;
    }
  }
  return best;
}

bool CertAuthorizer::Admits(const CertRule& rule,
                            const PeerIdentity& identity) {
  for (const std::string& a : rule.allowed) {
    absl::string_view v = a;
    if (v == "*") return true;
    if (absl::ConsumePrefix(&v, "cn:")) {
      if (!identity.common_name.empty() && identity.common_name == v) {
        return true;
      }
    } else if (absl::ConsumePrefix(&v, "dns:")) {
      if (Contains(identity.dns_names, v)) return true;
    } else if (absl::ConsumePrefix(&v, "ip:")) {
      if (Contains(identity.ip_addresses, v)) return true;
    } else if (absl::ConsumePrefix(&v, "uri:")) {
      if (Contains(identity.uris, v)) return true;
    } else if (absl::ConsumePrefix(&v, "subject:")) {
      if (identity.subject == v) return true;
    }
  }
  return false;
}

absl::Status CertAuthorizer::OnCallStart(ServerCallInfo& call, std::any&) {
  if (call.peer_identity != nullptr && call.principal.empty()) {
    call.principal = call.peer_identity->subject;
  }
  const CertRule* rule = RuleFor(call.method);
  if (rule == nullptr) return absl::OkStatus();
  if (call.peer_identity == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(
        call.method,
        " needs a client certificate (mutual TLS); none was presented"));
  }
  if (Admits(*rule, *call.peer_identity)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "certificate ", call.peer_identity->subject, " is not allowed to call ",
      call.method, " (rule ", rule->method_pattern, ")"));
}

}  // namespace bevrpc::auth
