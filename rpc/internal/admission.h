// Admission: what a server decides about a call between reading its
// REQUEST and dispatching it, from ServerOptions: the concurrency limits
// (max_concurrent_calls, max_concurrent_calls_per_method, the adaptive
// limit adaptive_concurrency) and the injected faults (fault_injection).
// Internal to rpc/.
//
//   absl::StatusOr<std::unique_ptr<Admission>> a =
//       Admission::Create(options, methods);          // at Start()
//   // per call, on the session's loop:
//   const MethodPolicy* policy = a->PolicyFor(method);  // null: none
//   if (policy && policy->abort && Roll(policy->abort->percent, &rng)) ...
//   AdmissionSlot slot;
//   absl::Status s = a->Admit(policy, &slot);   // RESOURCE_EXHAUSTED: refuse
//   ...                                         // slot.Release() when it ends
//                                               // (ReleaseAnswered() when
//                                               // the handler answered)
//
// Threading: Create() on the controlling thread before serving; the rest
// is thread-safe (CallLimit is a lock-free counter; AdaptiveLimit records
// into atomic counters and recomputes once per window). An AdmissionSlot is
// thread-compatible: one owner at a time.
#ifndef BEVRPC_RPC_INTERNAL_ADMISSION_H_
#define BEVRPC_RPC_INTERNAL_ADMISSION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rpc/fault_injection.h"
#include "rpc/internal/adaptive_limit.h"
#include "rpc/method.h"
#include "rpc/server_options.h"

namespace bevrpc::internal {

// Calls in flight against one limit. Thread-safe, lock-free: the count
// never exceeds the limit (a compare-and-swap admits), so "at most N" is
// exact under any concurrency.
class CallLimit {
 public:
  // `limit` 0 = unlimited (still counted).
  CallLimit(std::string name, int64_t limit)
      : name_(std::move(name)), limit_(limit) {}

  bool TryAcquire() {
    if (limit_ == 0) {
      in_flight_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    int64_t n = in_flight_.load(std::memory_order_relaxed);
    do {
      if (n >= limit_) return false;
    } while (!in_flight_.compare_exchange_weak(n, n + 1,
                                               std::memory_order_relaxed));
    return true;
  }
  void Release() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  int64_t in_flight() const {
    return in_flight_.load(std::memory_order_relaxed);
  }
  int64_t limit() const { return limit_; }
  // The option that sets it, for messages: "max_concurrent_calls".
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  const int64_t limit_;
  std::atomic<int64_t> in_flight_{0};
};

// A call's hold on the limits it was admitted under; given back exactly
// once, by Release() or the destructor. Move-only.
class AdmissionSlot {
 public:
  AdmissionSlot() = default;
  AdmissionSlot(AdmissionSlot&& other) noexcept { *this = std::move(other); }
  AdmissionSlot& operator=(AdmissionSlot&& other) noexcept {
    if (this != &other) {
      Release();
      server_ = other.server_;
      method_ = other.method_;
      adaptive_ = other.adaptive_;
      admitted_us_ = other.admitted_us_;
      other.server_ = other.method_ = nullptr;
      other.adaptive_ = nullptr;
    }
    return *this;
  }
  ~AdmissionSlot() { Release(); }

  // The call ended without its handler's answer (cancelled, timed out,
  // connection lost, shutdown).
  void Release() { Release(/*answered=*/false); }
  // The call ended with its handler's answer, OK or not: the adaptive limit
  // counts it in the server's throughput.
  void ReleaseAnswered() { Release(/*answered=*/true); }
  bool held() const { return server_ != nullptr; }

 private:
  friend class Admission;
  void Release(bool answered) {
    if (server_ != nullptr) server_->Release();
    if (method_ != nullptr) method_->Release();
    if (adaptive_ != nullptr) adaptive_->Release(admitted_us_, answered);
    server_ = method_ = nullptr;
    adaptive_ = nullptr;
  }

  CallLimit* server_ = nullptr;
  CallLimit* method_ = nullptr;  // Null without a per-method limit.
  // Null unless the adaptive limit is on and the call is unary.
  AdaptiveLimit* adaptive_ = nullptr;
  int64_t admitted_us_ = 0;  // AdaptiveLimit::NowUs() at admission.
};

// What applies to one method beyond the server-wide limit; resolved at
// Create(), immutable afterwards (except the limit's count).
struct MethodPolicy {
  std::unique_ptr<CallLimit> limit;   // Null: no per-method limit.
  const FaultAbort* abort = nullptr;  // Points into the options. Null: none.
  const FaultDelay* delay = nullptr;
};

class Admission {
 public:
  // `options` and `methods` are borrowed and must outlive the Admission
  // (both live in the server's ServerShared) and not change. Fails with
  // INVALID_ARGUMENT naming the option for a limit or fault rule that
  // names an unregistered method, or has a bad value.
  static absl::StatusOr<std::unique_ptr<Admission>> Create(
      const ServerOptions& options,
      const absl::flat_hash_map<std::string, MethodDesc>& methods);

  // Null when nothing but the server-wide limit applies to `method` (the
  // common case, without a hash lookup when no method has a policy).
  const MethodPolicy* PolicyFor(const MethodDesc* method) const {
    if (policies_.empty()) return nullptr;
    auto it = policies_.find(method);
    return it == policies_.end() ? nullptr : &it->second;
  }

  // Takes a slot under the server-wide limit, `policy`'s (if any) and, for
  // a unary call, the adaptive limit (if on) into *slot; RESOURCE_EXHAUSTED
  // naming the limit when one is full (then nothing is held).
  absl::Status Admit(const MethodDesc& method, const MethodPolicy* policy,
                     AdmissionSlot* slot);

  // The bevrpc-retry-pushback-ms value sent with a refusal: "0", "250",
  // or "-1" (do not retry).
  const std::string& pushback_ms() const { return pushback_ms_; }

  int64_t calls_in_flight() const { return server_.in_flight(); }

  // The server-wide limit now: the adaptive limit's current value when it
  // is on, else max_concurrent_calls (0 = unlimited).
  int64_t concurrency_limit() const {
    return adaptive_ != nullptr ? adaptive_->limit() : server_.limit();
  }

  // One line per fault rule, for the startup log: empty when off.
  std::vector<std::string> DescribeFaults() const;

 private:
  explicit Admission(const ServerOptions& options);

  const ServerOptions& options_;
  CallLimit server_;
  std::unique_ptr<AdaptiveLimit> adaptive_;  // Null when off.
  std::string pushback_ms_;
  absl::flat_hash_map<const MethodDesc*, MethodPolicy> policies_;
};

// True for `percent` % of the calls: draws from the splitmix64 generator
// whose state is *state (one per loop thread or session).
bool RollPercent(double percent, uint64_t* state);

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_ADMISSION_H_
