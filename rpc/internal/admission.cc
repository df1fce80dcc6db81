#include "rpc/internal/admission.h"

#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "rpc/status.h"

namespace bevrpc::internal {
namespace {

// Finds `rules`' rule for each method (an exact name, else "*"), checking
// that every rule names a registered method and appears once.
template <typename Rule>
absl::Status ResolveRules(
    const std::vector<Rule>& rules, absl::string_view option,
    const absl::flat_hash_map<std::string, MethodDesc>& methods,
    absl::FunctionRef<void(const MethodDesc*, const Rule*)> assign) {
  const Rule* any = nullptr;
  absl::flat_hash_map<std::string, const Rule*> exact;
  for (const Rule& rule : rules) {
    if (!(rule.percent >= 0 && rule.percent <= 100)) {
      return absl::InvalidArgumentError(
          absl::StrCat(option, " rule for \"", rule.method, "\": percent ",
                       rule.percent, " is not within [0, 100]"));
    }
    if (rule.method == "*") {
      if (any != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(option, " has two rules for \"*\""));
      }
      any = &rule;
      continue;
    }
    if (!methods.contains(rule.method)) {
      return absl::InvalidArgumentError(absl::StrCat(
          option, " rule names method \"", rule.method,
          "\", which is not registered (expected package.Service/Method "
          "or *)"));
    }
    if (!exact.emplace(rule.method, &rule).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          option, " has two rules for \"", rule.method, "\""));
    }
  }
  for (const auto& [name, method] : methods) {
    auto it = exact.find(name);
    const Rule* rule = it != exact.end() ? it->second : any;
    if (rule != nullptr) assign(&method, rule);
  }
  return absl::OkStatus();
}

}  // namespace

Admission::Admission(const ServerOptions& options)
    : options_(options),
      server_("max_concurrent_calls", options.max_concurrent_calls),
      pushback_ms_(options.overload_retry_pushback < absl::ZeroDuration()
                       ? "-1"
                       : absl::StrCat(absl::ToInt64Milliseconds(
                             options.overload_retry_pushback))) {}

absl::StatusOr<std::unique_ptr<Admission>> Admission::Create(
    const ServerOptions& options,
    const absl::flat_hash_map<std::string, MethodDesc>& methods) {
  if (options.max_concurrent_calls < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_concurrent_calls ", options.max_concurrent_calls,
                     " is negative (0 = unlimited)"));
  }
  std::unique_ptr<Admission> a(new Admission(options));
  if (options.adaptive_concurrency.enabled) {
    absl::Status valid = AdaptiveLimit::Validate(options.adaptive_concurrency);
    if (!valid.ok()) return valid;
    const int64_t now = AdaptiveLimit::NowUs();
    // Replicas started together re-measure at different times.
    a->adaptive_ = std::make_unique<AdaptiveLimit>(
        options.adaptive_concurrency, now,
        static_cast<uint64_t>(now) ^ reinterpret_cast<uintptr_t>(a.get()));
  }
  for (const auto& [name, limit] : options.max_concurrent_calls_per_method) {
    auto it = methods.find(name);
    if (it == methods.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_concurrent_calls_per_method names method \"", name,
          "\", which is not registered"));
    }
    if (limit < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_concurrent_calls_per_method[\"", name, "\"] is ", limit,
          "; it must be at least 1"));
    }
    a->policies_[&it->second].limit = std::make_unique<CallLimit>(
        absl::StrCat("max_concurrent_calls_per_method[\"", name, "\"]"),
        limit);
  }
  const FaultInjection& faults = options.fault_injection;
  for (const FaultAbort& rule : faults.aborts) {
    if (rule.code == absl::StatusCode::kOk) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fault_injection abort rule for \"", rule.method,
          "\" has code OK: an abort needs an error code"));
    }
  }
  for (const FaultDelay& rule : faults.delays) {
    if (rule.delay < absl::ZeroDuration() ||
        rule.delay == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fault_injection delay rule for \"", rule.method, "\": delay ",
          absl::FormatDuration(rule.delay), " must be finite and >= 0"));
    }
  }
  absl::Status s = ResolveRules<FaultAbort>(
      faults.aborts, "fault_injection abort", methods,
      [&](const MethodDesc* m, const FaultAbort* r) {
        a->policies_[m].abort = r;
      });
  if (!s.ok()) return s;
  s = ResolveRules<FaultDelay>(faults.delays, "fault_injection delay", methods,
                               [&](const MethodDesc* m, const FaultDelay* r) {
                                 a->policies_[m].delay = r;
                               });
  if (!s.ok()) return s;
  return a;
}

absl::Status Admission::Admit(const MethodDesc& method,
                              const MethodPolicy* policy,
                              AdmissionSlot* slot) {
  CallLimit* method_limit = policy != nullptr ? policy->limit.get() : nullptr;
  // The narrower limit first: a call refused by its method's limit never
  // holds a server-wide slot, even for an instant.
  if (method_limit != nullptr && !method_limit->TryAcquire()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "method ", method.full_name, " overloaded: ", method_limit->limit(),
        " calls in flight, the limit ", method_limit->name(),
        " (retry on another server)"));
  }
  if (!server_.TryAcquire()) {
    if (method_limit != nullptr) method_limit->Release();
    return absl::ResourceExhaustedError(absl::StrCat(
        "server overloaded: ", server_.limit(),
        " calls in flight, the limit max_concurrent_calls (retry on another "
        "server)"));
  }
  AdaptiveLimit* adaptive =
      method.kind == MethodKind::kUnary ? adaptive_.get() : nullptr;
  if (adaptive != nullptr && !adaptive->TryAcquire()) {
    server_.Release();
    if (method_limit != nullptr) method_limit->Release();
    return absl::ResourceExhaustedError(absl::StrCat(
        "server overloaded: ", adaptive->in_flight(),
        " calls in flight, the adaptive limit (adaptive_concurrency) is now ",
        adaptive->limit(), " (retry on another server)"));
  }
  slot->Release();
  slot->server_ = &server_;
  slot->method_ = method_limit;
  if (adaptive != nullptr) {
    slot->adaptive_ = adaptive;
    slot->admitted_us_ = AdaptiveLimit::NowUs();
  }
  return absl::OkStatus();
}

std::vector<std::string> Admission::DescribeFaults() const {
  std::vector<std::string> lines;
  for (const FaultAbort& r : options_.fault_injection.aborts) {
    lines.push_back(absl::StrCat("abort ", r.percent, "% of calls to ",
                                 r.method, " with ", StatusCodeName(r.code),
                                 r.message.empty() ? "" : " \"", r.message,
                                 r.message.empty() ? "" : "\""));
  }
  for (const FaultDelay& r : options_.fault_injection.delays) {
    lines.push_back(absl::StrCat("delay ", r.percent, "% of calls to ",
                                 r.method, " by ",
                                 absl::FormatDuration(r.delay)));
  }
  return lines;
}

bool RollPercent(double percent, uint64_t* state) {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z ^= z >> 31;
  const double uniform =
      static_cast<double>(z >> 11) / static_cast<double>(uint64_t{1} << 53);
  return uniform * 100 < percent;
}

}  // namespace bevrpc::internal
