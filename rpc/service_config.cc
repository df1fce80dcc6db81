#include "rpc/service_config.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "rpc/service_config.pb.h"
#include "rpc/status.h"

namespace bevrpc {
namespace {

using config::ServiceConfigProto;

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Status ParseCodes(const google::protobuf::RepeatedPtrField<std::string>& in,
                        absl::string_view field,
                        std::vector<absl::StatusCode>* out) {
  out->clear();
  for (const std::string& name : in) {
    absl::StatusCode code;
    if (!ParseStatusCode(name, &code) || code == absl::StatusCode::kOk) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": \"", name, "\" is not a canonical status code name "
          "(UNAVAILABLE, DEADLINE_EXCEEDED, ...) other than OK"));
    }
    out->push_back(code);
  }
  return absl::OkStatus();
}

absl::Status CheckAttempts(int attempts, absl::string_view field) {
  if (attempts < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be >= 0, got ", attempts));
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(absl::Duration d, absl::string_view field,
                           bool allow_zero) {
  if (d < absl::ZeroDuration() || (!allow_zero && d == absl::ZeroDuration())) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be ", allow_zero ? ">= 0" : "> 0", ", got ",
        absl::FormatDuration(d)));
  }
  return absl::OkStatus();
}

absl::Status CheckRetry(const RetryPolicy& r, absl::string_view where) {
  absl::Status s = CheckAttempts(r.max_attempts, absl::StrCat(where, "maxAttempts"));
  if (!s.ok()) return s;
  if (r.max_attempts < 2) return absl::OkStatus();
  s = CheckDuration(r.initial_backoff, absl::StrCat(where, "initialBackoff"), false);
  if (!s.ok()) return s;
  s = CheckDuration(r.max_backoff, absl::StrCat(where, "maxBackoff"), false);
  if (!s.ok()) return s;
  if (!(r.backoff_multiplier > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "backoffMultiplier must be > 0, got ", r.backoff_multiplier));
  }
  if (r.retryable_codes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "retryableStatusCodes must not be empty"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateServiceConfig(const ServiceConfig& config) {
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < config.methods.size(); ++i) {
    const MethodConfig& m = config.methods[i];
    const std::string where = absl::StrCat("methodConfig[", i, "].");
    for (const std::string& name : m.names) {
      if (!seen.insert(name).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "name: \"", name.empty() ? "(default)" : name,
            "\" appears in more than one methodConfig entry"));
      }
    }
    if (m.retry.has_value() && m.hedging.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "retryPolicy and hedgingPolicy are mutually exclusive"));
    }
    absl::Status s = CheckDuration(m.timeout, absl::StrCat(where, "timeout"),
                                   false);
    if (!s.ok()) return s;
    if (m.retry.has_value()) {
      s = CheckRetry(*m.retry, absl::StrCat(where, "retryPolicy."));
      if (!s.ok()) return s;
    }
    if (m.hedging.has_value()) {
      s = CheckAttempts(m.hedging->max_attempts,
                        absl::StrCat(where, "hedgingPolicy.maxAttempts"));
      if (!s.ok()) return s;
      s = CheckDuration(m.hedging->hedging_delay,
                        absl::StrCat(where, "hedgingPolicy.hedgingDelay"), true);
      if (!s.ok()) return s;
    }
  }
  if (!(config.retry_throttling.token_ratio > 0) &&
      config.retry_throttling.max_tokens != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retryThrottling.tokenRatio must be > 0, got ",
        config.retry_throttling.token_ratio));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServiceConfig> ParseServiceConfig(absl::string_view json) {
  ServiceConfigProto proto;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &proto, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service config does not parse: ", parsed.message().ToString()));
  }
  ServiceConfig config;
  for (int i = 0; i < proto.method_config_size(); ++i) {
    const ServiceConfigProto::MethodConfig& in = proto.method_config(i);
    const std::string where = absl::StrCat("methodConfig[", i, "].");
    MethodConfig m;
    for (const ServiceConfigProto::Name& name : in.name()) {
      if (name.service().empty() && !name.method().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, "name: method \"", name.method(), "\" needs a service"));
      }
      m.names.push_back(name.method().empty()
                            ? name.service()
                            : absl::StrCat(name.service(), "/", name.method()));
    }
    if (in.has_timeout()) m.timeout = FromProto(in.timeout());
    if (in.has_retry_policy()) {
      const auto& r = in.retry_policy();
      RetryPolicy policy;
      policy.max_attempts = static_cast<int>(r.max_attempts());
      if (r.has_initial_backoff()) policy.initial_backoff = FromProto(r.initial_backoff());
      if (r.has_max_backoff()) policy.max_backoff = FromProto(r.max_backoff());
      if (r.backoff_multiplier() != 0) policy.backoff_multiplier = r.backoff_multiplier();
      if (r.retryable_status_codes_size() > 0) {
        absl::Status s = ParseCodes(r.retryable_status_codes(),
                                    where + "retryPolicy.retryableStatusCodes",
                                    &policy.retryable_codes);
        if (!s.ok()) return s;
      }
      m.retry = std::move(policy);
    }
    if (in.has_hedging_policy()) {
      const auto& h = in.hedging_policy();
      HedgingPolicy policy;
      policy.max_attempts = static_cast<int>(h.max_attempts());
      if (h.has_hedging_delay()) policy.hedging_delay = FromProto(h.hedging_delay());
      absl::Status s = ParseCodes(h.non_fatal_status_codes(),
                                  where + "hedgingPolicy.nonFatalStatusCodes",
                                  &policy.non_fatal_codes);
      if (!s.ok()) return s;
      m.hedging = std::move(policy);
    }
    config.methods.push_back(std::move(m));
  }
  if (proto.has_retry_throttling()) {
    config.retry_throttling.max_tokens = proto.retry_throttling().max_tokens();
    config.retry_throttling.token_ratio = proto.retry_throttling().token_ratio();
  }
  absl::Status valid = ValidateServiceConfig(config);
  if (!valid.ok()) return valid;
  return config;
}

}  // namespace bevrpc
