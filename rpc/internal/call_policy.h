// CallPolicies: a channel's ServiceConfig resolved into what each call
// needs (timeout, retry rule, hedging rule), immutable once built, and the
// channel's retry throttle. Internal to rpc/.
//
//   auto policies = CallPolicies::Create(options.service_config,
//                                        options.idempotent_retry);
//   const CallPolicy* p = policies->Find("bevrpc.echo.Echo/Echo");  // or null
//
// Threading: Find() is thread-safe and takes no lock (the tables are
// immutable; idempotency comes from rpc/idempotency.h's lock-free table).
// RetryThrottle is thread-safe and lock-free.
#ifndef BEVRPC_RPC_INTERNAL_CALL_POLICY_H_
#define BEVRPC_RPC_INTERNAL_CALL_POLICY_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/service_config.h"

namespace bevrpc::internal {

// Bit (1 << code) for each canonical code in a set.
inline uint32_t CodeBit(absl::StatusCode code) {
  const int c = static_cast<int>(code);
  return c >= 0 && c < 32 ? (uint32_t{1} << c) : 0;
}

// The channel's retry throttle (RetryThrottling), in thousandths of a
// token. A successful call touches the shared counter only while it is
// below the maximum, so a healthy channel's calls only read it.
class RetryThrottle {
 public:
  explicit RetryThrottle(const RetryThrottling& config);

  bool enabled() const { return max_ > 0; }
  // A call with a retry or hedging policy succeeded.
  void OnSuccess() {
    if (max_ == 0) return;
    int64_t t = tokens_.load(std::memory_order_relaxed);
    while (t < max_ && !tokens_.compare_exchange_weak(
                           t, std::min(max_, t + ratio_),
                           std::memory_order_relaxed)) {
    }
  }
  // An attempt failed with a retryable (or non-fatal) code: takes a
  // token; true when further attempts are still allowed.
  bool OnFailure();
  // True while further attempts are allowed (without taking a token).
  bool Allows() const {
    return max_ == 0 || tokens_.load(std::memory_order_relaxed) > max_ / 2;
  }
  // Tokens left, in thousandths (tests, status).
  int64_t milli_tokens() const {
    return tokens_.load(std::memory_order_relaxed);
  }

 private:
  const int64_t max_;    // Thousandths; 0: off.
  const int64_t ratio_;  // Thousandths given back per success.
  std::atomic<int64_t> tokens_;
};

struct RetryRule {
  int max_attempts = 1;  // Capped at 5.
  absl::Duration initial_backoff;
  absl::Duration max_backoff;
  double multiplier = 2;
  uint32_t codes = 0;  // CodeBit()s.
  // The delay before attempt `next` (2, 3, ...): uniform in
  // [0, min(initial * multiplier^(next-2), max)). `rng`: splitmix64 state.
  absl::Duration Backoff(int next, uint64_t* rng) const;
};

struct HedgeRule {
  int max_attempts = 1;  // Capped at 5.
  absl::Duration delay;
  uint32_t non_fatal = 0;  // CodeBit()s.
};

struct CallPolicy {
  absl::Duration timeout = absl::InfiniteDuration();
  const RetryRule* retry = nullptr;  // Null: no retries.
  const HedgeRule* hedge = nullptr;  // Null: no hedging.
};

class CallPolicies {
 public:
  // Fails (INVALID_ARGUMENT) when ValidateServiceConfig() does.
  static absl::StatusOr<std::unique_ptr<CallPolicies>> Create(
      const ServiceConfig& config, const RetryPolicy& idempotent_retry);

  // What applies to `method` ("pkg.Service/Method"); null when nothing
  // does (no config entry, not marked idempotent, or retries off). The
  // last answer is cached per thread (a thread calling one method over and
  // over compares the name instead of hashing it twice).
  const CallPolicy* Find(absl::string_view method) const;

  RetryThrottle* throttle() { return &throttle_; }

 private:
  // One config entry's policy, as it applies to a method that may have
  // side effects and to one that is idempotent.
  struct Entry {
    CallPolicy plain;
    CallPolicy idempotent;
  };
  explicit CallPolicies(const RetryThrottling& throttling);
  const Entry* Lookup(absl::string_view method) const;
  const CallPolicy* FindUncached(absl::string_view method) const;

  std::vector<std::unique_ptr<RetryRule>> retry_rules_;
  std::vector<std::unique_ptr<HedgeRule>> hedge_rules_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Entry>> by_name_;
  std::shared_ptr<const Entry> default_;  // The entry naming "" (or null).
  CallPolicy idempotent_only_;  // Idempotent, no entry applies.
  bool any_entry_ = false;
  // Unique per instance (never reused, unlike an address): keys the
  // per-thread cache of the last lookup.
  const uint64_t serial_;
  RetryThrottle throttle_;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CALL_POLICY_H_
