// ServiceConfig: per-method timeouts, retries and hedging for a channel,
// set in code (ChannelOptions::service_config) or parsed from JSON in
// gRPC's "methodConfig" shape (ParseServiceConfig(); the CLI's
// --service_config). docs/resilience.md explains every field.
//
//   absl::StatusOr<ServiceConfig> config = ParseServiceConfig(R"({
//     "methodConfig": [{
//       "name": [{"service": "bevrpc.echo.Echo", "method": "Echo"}],
//       "timeout": "2s",
//       "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "0.02s"}
//     }]
//   })");
//   ChannelOptions options;
//   options.service_config = *config;
//
// Which config applies to a call to "pkg.Service/Method": the entry naming
// that method, else the one naming "pkg.Service", else the one naming
// nothing (the default), else none. Methods whose .proto marks them
// NO_SIDE_EFFECTS or IDEMPOTENT (rpc/idempotency.h) are retried with
// ChannelOptions::idempotent_retry unless the applying entry has its own
// retry or hedging policy (max_attempts 1 turns retries off).
//
// Plain values; thread-compatible.
#ifndef BEVRPC_RPC_SERVICE_CONFIG_H_
#define BEVRPC_RPC_SERVICE_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bevrpc {

// gRPC's retry policy. Attempt n (n >= 2) starts after a random delay in
// [0, min(initial_backoff * backoff_multiplier^(n-2), max_backoff)), or
// after the delay the server's bevrpc-retry-pushback-ms trailer names (a
// negative or malformed one: no more attempts). Only unary calls are
// retried, never past their deadline, never once the server's response
// headers arrived, and never on a status outside retryable_codes.
struct RetryPolicy {
  // Attempts in all, the first included: 2..5 (more are capped at 5);
  // 0 or 1 = no retries. Default: 0.
  int max_attempts = 0;
  // Default: 100 ms.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  // Default: 1 s.
  absl::Duration max_backoff = absl::Seconds(1);
  // Default: 2.
  double backoff_multiplier = 2.0;
  // Statuses worth another attempt. Default: UNAVAILABLE.
  std::vector<absl::StatusCode> retryable_codes = {
      absl::StatusCode::kUnavailable};
};

// gRPC's hedging policy (brpc's backup request): the first attempt goes
// out at once; while none has answered, another goes to a different
// endpoint every hedging_delay, up to max_attempts at once. The first
// answer that is OK, or fails with a code outside non_fatal_codes, is the
// call's; the other attempts are cancelled. An attempt failing with a
// non-fatal code sends the next one at once. For methods that may run
// more than once (idempotent or without side effects).
struct HedgingPolicy {
  // Attempts in all: 2..5 (more are capped at 5); 0 or 1 = off.
  // Default: 0.
  int max_attempts = 0;
  // Default: 0 (all attempts at once).
  absl::Duration hedging_delay = absl::ZeroDuration();
  // Default: none.
  std::vector<absl::StatusCode> non_fatal_codes;
};

struct MethodConfig {
  // "pkg.Service/Method", "pkg.Service" (its every method) or "" (every
  // method). Each name may appear in one entry only. Default: none.
  std::vector<std::string> names;
  // Deadline of calls that set a longer one, or none. Default: infinite.
  absl::Duration timeout = absl::InfiniteDuration();
  // At most one of the two. Default: none.
  std::optional<RetryPolicy> retry;
  std::optional<HedgingPolicy> hedging;
};

// gRPC's retry throttling, per channel: a token count starting at
// max_tokens; each failed attempt of a call with a retry or hedging policy
// takes 1, each successful call gives token_ratio back (up to max_tokens).
// While the count is at most max_tokens / 2, failed calls are not retried
// and no further hedges go out, so a fleet that fails everything is not
// sent more than a bounded share of extra attempts.
struct RetryThrottling {
  // 0 = no throttling. Default: 100 (a burst of 50 failed attempts, such
  // as every call open on a connection that died, is still retried).
  uint32_t max_tokens = 100;
  // Default: 0.1.
  double token_ratio = 0.1;
};

struct ServiceConfig {
  std::vector<MethodConfig> methods;
  RetryThrottling retry_throttling;
};

// Parses gRPC's JSON service config ("methodConfig" with "name",
// "timeout", "retryPolicy", "hedgingPolicy"; "retryThrottling").
// Durations are strings like "0.5s". Unknown fields, bad durations,
// unknown status codes, both policies in one entry, or a name in two
// entries: INVALID_ARGUMENT naming the field.
absl::StatusOr<ServiceConfig> ParseServiceConfig(absl::string_view json);

// The checks ParseServiceConfig() makes, for configs built in code
// (Channel::Create() runs them).
absl::Status ValidateServiceConfig(const ServiceConfig& config);

}  // namespace bevrpc

#endif  // BEVRPC_RPC_SERVICE_CONFIG_H_
