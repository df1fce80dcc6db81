#include "rpc/auth/bearer_token.h"

#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rpc/internal/config_lines.h"
#include "rpc/internal/read_file.h"

namespace bevrpc::auth {
namespace {

constexpr size_t kMinTokenBytes = 16;
constexpr absl::string_view kBearer = "Bearer ";

bool PrintableNoSpace(absl::string_view s) {
  for (char c : s) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

// One line of a token file: "NAME TOKEN" or "TOKEN".
absl::StatusOr<NamedToken> ParseTokenLine(int line_no, absl::string_view line) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  NamedToken t;
  if (fields.size() == 1) {
    t.name = absl::StrCat("token-", line_no);
    t.token = std::string(fields[0]);
  } else if (fields.size() == 2) {
    t.name = std::string(fields[0]);
    t.token = std::string(fields[1]);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", line_no, ": expected \"NAME TOKEN\" or \"TOKEN\", got ",
        fields.size(), " fields"));
  }
  if (t.token.size() < kMinTokenBytes || !PrintableNoSpace(t.token)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", line_no, " (", t.name, "): a token is at least ",
        kMinTokenBytes, " printable ASCII characters without spaces"));
  }
  return t;
}

}  // namespace

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() != b.size() ? 1 : 0;
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  // Keeps the compiler from ending the loop at the first difference.
  volatile unsigned char result = diff;
  return result == 0;
}

bool MethodMatches(absl::string_view pattern, absl::string_view method) {
  if (pattern == "*") return true;
  if (absl::EndsWith(pattern, "/*")) {
    pattern.remove_suffix(1);  // Keep the '/'.
    return absl::StartsWith(method, pattern);
  }
  return pattern == method;
}

struct BearerTokenAuth::Failures {
  metrics::Counter* missing = nullptr;
  metrics::Counter* scheme = nullptr;
  metrics::Counter* invalid = nullptr;
};

absl::StatusOr<std::vector<NamedToken>> BearerTokenAuth::Parse(
    absl::string_view contents) {
  std::vector<NamedToken> tokens;
  absl::Status s = internal::ForEachConfigLine(
      contents, [&](int line_no, absl::string_view line) -> absl::Status {
        absl::StatusOr<NamedToken> t = ParseTokenLine(line_no, line);
        if (!t.ok()) return t.status();
        for (const NamedToken& other : tokens) {
          if (other.name == t->name) {
            return absl::InvalidArgumentError(absl::StrCat(
                "line ", line_no, ": the name ", t->name, " is used twice"));
          }
        }
        tokens.push_back(*std::move(t));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return tokens;
}

BearerTokenAuth::BearerTokenAuth(std::string path, BearerTokenOptions options)
    : path_(std::move(path)),
      options_(std::move(options)),
      failures_(std::make_unique<Failures>()) {
  if (options_.metrics_registry != nullptr) {
    metrics::MetricSpec spec;
    spec.name = "bevrpc_server_auth_failures";
    spec.help =
        "Calls refused by the bearer-token interceptor, by reason (missing "
        "header, another scheme, unknown token).";
    spec.label_names = {"reason"};
    auto family = options_.metrics_registry->RegisterCounterFamily(spec);
    if (family.ok()) {
      failures_->missing = (*family)->Get({"missing"});
      failures_->scheme = (*family)->Get({"scheme"});
      failures_->invalid = (*family)->Get({"invalid"});
    }
  }
}

absl::StatusOr<std::shared_ptr<BearerTokenAuth>> BearerTokenAuth::FromFile(
    std::string path, BearerTokenOptions options) {
  if (options.reload_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("reload_interval must be positive");
  }
  std::shared_ptr<BearerTokenAuth> auth(
      new BearerTokenAuth(std::move(path), std::move(options)));
  absl::Status s = auth->Reload();
  if (!s.ok()) return s;
  auth->watcher_ = std::thread([raw = auth.get()] { raw->Watch(); });
  return auth;
}

absl::StatusOr<std::shared_ptr<BearerTokenAuth>> BearerTokenAuth::FromTokens(
    std::vector<NamedToken> tokens, BearerTokenOptions options) {
  std::string contents;
  for (const NamedToken& t : tokens) {
    absl::StrAppend(&contents, t.name, " ", t.token, "\n");
  }
  absl::StatusOr<std::vector<NamedToken>> parsed = Parse(contents);
  if (!parsed.ok()) return parsed.status();
  std::shared_ptr<BearerTokenAuth> auth(
      new BearerTokenAuth("", std::move(options)));
  MutexLock lock(&auth->mu_);
  auth->tokens_ =
      std::make_shared<const std::vector<NamedToken>>(*std::move(parsed));
  return auth;
}

BearerTokenAuth::~BearerTokenAuth() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  stop_cv_.SignalAll();
  if (watcher_.joinable()) watcher_.join();
}

absl::Status BearerTokenAuth::Reload() {
  if (path_.empty()) return absl::OkStatus();
  absl::StatusOr<internal::FileStamp> stamp = internal::FileStamp::Of(path_);
  if (!stamp.ok()) {
    return absl::NotFoundError(
        absl::StrCat("token file ", path_, ": cannot stat it"));
  }
  absl::StatusOr<std::string> contents = internal::ReadFileToString(path_);
  if (!contents.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("token file ", path_, ": cannot read it"));
  }
  absl::StatusOr<std::vector<NamedToken>> parsed = Parse(*contents);
  MutexLock lock(&mu_);
  // Remembered even when bad: the watcher reports a bad file once.
  file_stamp_ = *stamp;
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path_, ": ", parsed.status().message()));
  }
  tokens_ = std::make_shared<const std::vector<NamedToken>>(*std::move(parsed));
  return absl::OkStatus();
}

void BearerTokenAuth::Watch() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    stop_cv_.WaitWithTimeout(&mu_, options_.reload_interval);
    if (stopping_) break;
    // A file that cannot be stat()ed (being replaced, gone) is no change:
    // the tokens in force stay until a readable file differs.
    absl::StatusOr<internal::FileStamp> now = internal::FileStamp::Of(path_);
    if (!now.ok() || *now == file_stamp_) continue;
    mu_.Unlock();
    absl::Status s = Reload();
    if (!s.ok()) {
      std::cerr << "bevrpc: " << s.message() << "; keeping the tokens in "
                << "force\n";
    }
    mu_.Lock();
  }
}

size_t BearerTokenAuth::size() const {
  MutexLock lock(&mu_);
  return tokens_ == nullptr ? 0 : tokens_->size();
}

bool BearerTokenAuth::Exempt(absl::string_view method) const {
  for (const std::string& pattern : options_.exempt_methods) {
    if (MethodMatches(pattern, method)) return true;
  }
  return false;
}

absl::Status BearerTokenAuth::OnCallStart(ServerCallInfo& call, std::any&) {
  if (Exempt(call.method)) return absl::OkStatus();
  const std::string* header = call.header("authorization");
  if (header == nullptr) {
    if (failures_->missing != nullptr) failures_->missing->Increment();
    return absl::UnauthenticatedError(absl::StrCat(
        call.method, " needs a bearer token: no \"authorization: Bearer "
                     "<token>\" request header"));
  }
  if (header->size() < kBearer.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(*header).substr(0, kBearer.size()),
                              kBearer)) {
    if (failures_->scheme != nullptr) failures_->scheme->Increment();
    return absl::UnauthenticatedError(
        "the authorization header is not \"Bearer <token>\"");
  }
  const absl::string_view presented =
      absl::string_view(*header).substr(kBearer.size());
  std::shared_ptr<const std::vector<NamedToken>> tokens;
  {
    MutexLock lock(&mu_);
    tokens = tokens_;
  }
  const NamedToken* match = nullptr;
  if (tokens != nullptr) {
    for (const NamedToken& t : *tokens) {
      // Every token is compared in full: no early exit on a match.
      if (ConstantTimeEquals(presented, t.token) && match == nullptr) {
        match = &t;
      }
    }
  }
  if (match == nullptr) {
    if (failures_->invalid != nullptr) failures_->invalid->Increment();
    return absl::UnauthenticatedError("invalid bearer token");
  }
  call.principal = match->name;
  return absl::OkStatus();
}

}  // namespace bevrpc::auth
