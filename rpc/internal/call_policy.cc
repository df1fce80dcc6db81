#include "rpc/internal/call_policy.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "rpc/idempotency.h"

namespace bevrpc::internal {
namespace {

constexpr int kMaxAttempts = 5;

uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint32_t Bits(const std::vector<absl::StatusCode>& codes) {
  uint32_t bits = 0;
  for (absl::StatusCode c : codes) bits |= CodeBit(c);
  return bits;
}

}  // namespace

RetryThrottle::RetryThrottle(const RetryThrottling& config)
    : max_(int64_t{config.max_tokens} * 1000),
      ratio_(static_cast<int64_t>(std::llround(config.token_ratio * 1000))),
      tokens_(int64_t{config.max_tokens} * 1000) {}

bool RetryThrottle::OnFailure() {
  if (max_ == 0) return true;
  int64_t t = tokens_.load(std::memory_order_relaxed);
  int64_t next;
  do {
    next = std::max<int64_t>(0, t - 1000);
  } while (!tokens_.compare_exchange_weak(t, next, std::memory_order_relaxed));
  return next > max_ / 2;
}

absl::Duration RetryRule::Backoff(int next, uint64_t* rng) const {
  double cap = absl::ToDoubleSeconds(initial_backoff) *
               std::pow(multiplier, std::max(0, next - 2));
  cap = std::min(cap, absl::ToDoubleSeconds(max_backoff));
  const double unit = static_cast<double>(SplitMix(rng) >> 11) * 0x1.0p-53;
  return absl::Seconds(cap * unit);
}

CallPolicies::CallPolicies(const RetryThrottling& throttling)
    : serial_([] {
        static std::atomic<uint64_t> next{1};
        return next.fetch_add(1, std::memory_order_relaxed);
      }()),
      throttle_(throttling) {}

absl::StatusOr<std::unique_ptr<CallPolicies>> CallPolicies::Create(
    const ServiceConfig& config, const RetryPolicy& idempotent_retry) {
  absl::Status valid = ValidateServiceConfig(config);
  if (!valid.ok()) return valid;
  std::unique_ptr<CallPolicies> p(new CallPolicies(config.retry_throttling));
  auto make_retry = [&p](const RetryPolicy& r) -> const RetryRule* {
    if (r.max_attempts < 2) return nullptr;
    auto rule = std::make_unique<RetryRule>();
    rule->max_attempts = std::min(r.max_attempts, kMaxAttempts);
    rule->initial_backoff = r.initial_backoff;
    rule->max_backoff = r.max_backoff;
    rule->multiplier = r.backoff_multiplier;
    rule->codes = Bits(r.retryable_codes);
    p->retry_rules_.push_back(std::move(rule));
    return p->retry_rules_.back().get();
  };
  const RetryRule* idempotent = make_retry(idempotent_retry);
  p->idempotent_only_.retry = idempotent;
  for (const MethodConfig& m : config.methods) {
    auto entry = std::make_shared<Entry>();
    entry->plain.timeout = m.timeout;
    if (m.retry.has_value()) {
      entry->plain.retry = make_retry(*m.retry);
    } else if (m.hedging.has_value() && m.hedging->max_attempts >= 2) {
      auto rule = std::make_unique<HedgeRule>();
      rule->max_attempts = std::min(m.hedging->max_attempts, kMaxAttempts);
      rule->delay = m.hedging->hedging_delay;
      rule->non_fatal = Bits(m.hedging->non_fatal_codes);
      p->hedge_rules_.push_back(std::move(rule));
      entry->plain.hedge = p->hedge_rules_.back().get();
    }
    entry->idempotent = entry->plain;
    if (!m.retry.has_value() && !m.hedging.has_value()) {
      entry->idempotent.retry = idempotent;
    }
    for (const std::string& name : m.names) {
      if (name.empty()) {
        p->default_ = entry;
      } else {
        p->by_name_[name] = entry;
      }
    }
    p->any_entry_ = true;
  }
  return p;
}

const CallPolicies::Entry* CallPolicies::Lookup(
    absl::string_view method) const {
  if (!by_name_.empty()) {
    auto it = by_name_.find(method);
    if (it != by_name_.end()) return it->second.get();
    const size_t slash = method.rfind('/');
    if (slash != absl::string_view::npos) {
      it = by_name_.find(method.substr(0, slash));
      if (it != by_name_.end()) return it->second.get();
    }
  }
  return default_.get();
}

const CallPolicy* CallPolicies::Find(absl::string_view method) const {
  struct LastLookup {
    uint64_t owner = 0;
    const void* table = nullptr;
    size_t size = 0;
    char name[120];
    const CallPolicy* result = nullptr;
  };
  thread_local LastLookup last;
  // Read before the lookup: a registration meanwhile makes the next call
  // miss, never hit a stale answer.
  const void* table = IdempotencyTableVersion();
  if (last.owner == serial_ && last.table == table &&
      last.size == method.size() &&
      std::memcmp(last.name, method.data(), method.size()) == 0) {
    return last.result;
  }
  const CallPolicy* result = FindUncached(method);
  if (method.size() <= sizeof(last.name)) {
    last.owner = serial_;
    last.table = table;
    last.size = method.size();
    std::memcpy(last.name, method.data(), method.size());
    last.result = result;
  }
  return result;
}

const CallPolicy* CallPolicies::FindUncached(absl::string_view method) const {
  const Entry* entry = any_entry_ ? Lookup(method) : nullptr;
  const bool repeatable = IsRepeatable(LookupIdempotency(method));
  if (entry != nullptr) {
    const CallPolicy* p = repeatable ? &entry->idempotent : &entry->plain;
    if (p->retry == nullptr && p->hedge == nullptr &&
        p->timeout == absl::InfiniteDuration()) {
      return nullptr;
    }
    return p;
  }
  if (repeatable && idempotent_only_.retry != nullptr) return &idempotent_only_;
  return nullptr;
}

}  // namespace bevrpc::internal
