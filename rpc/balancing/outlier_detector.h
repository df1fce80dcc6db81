// OutlierDetector: takes an endpoint that looks sick out of the balancer's
// rotation for a while (Envoy's outlier detection, brpc's circuit breaker).
// One per endpoint, shared by the endpoint's connection slots; the
// endpoint's EndpointHealth shows the result (EJECTED), which pickers skip
// while another endpoint is usable.
//
//   auto budget = std::make_shared<EjectionBudget>(options);  // per channel
//   auto detector = std::make_shared<OutlierDetector>(options, health, budget);
//   OutlierDetector::Window window;          // one per slot, its loop only
//   detector->OnCallEnded(window, status.code());   // as each call ends
//   health->state();                         // kEjected while ejected
//
// What counts (ClassifyCall()): a call that ends with a code saying the
// server or the path to it is sick — UNAVAILABLE (down, refusing, the
// connection failed or was lost), DEADLINE_EXCEEDED, INTERNAL, UNKNOWN,
// DATA_LOSS — is a failure. CANCELLED (the client gave up, or the channel
// is being destroyed) and RESOURCE_EXHAUSTED (the client's own request
// budget and size limits, or a server shedding load: ejecting a loaded
// server moves its load onto the others) count for nothing. Every other
// code, OK or not, is a success: a live server answered (INVALID_ARGUMENT,
// NOT_FOUND, ... are the caller's problem).
//
// Trips, per slot (one connection; with num_connections > 1 each counts
// its own calls, so a success costs no write shared between loops):
//   - `consecutive_failures` UNAVAILABLE in a row (a success resets the
//     run; other failures neither extend nor reset it);
//   - once `min_calls` calls have counted, an error-rate EMA above its
//     threshold: a short window (quick, for a server that breaks) or a
//     long one (slow, for one that errs steadily).
// An ejection lasts base_ejection_time x 2^k, at most max_ejection_time,
// where k is the number of earlier ejections, less one for each
// decay_interval the endpoint spent back in service. After it the endpoint
// is on probation: its first failure ejects it again at once (with the
// doubled time), its first success ends the probation. Outcomes of calls
// that end while it is ejected (started before) are ignored.
//
// Never more than max_ejection_percent of a channel's endpoints are
// ejected at once, but at least one may be when there are two or more
// (Envoy's rule); a lone endpoint is never ejected. A trip the budget
// refuses is dropped (the slot counts afresh).
//
// Threading: thread-safe. OnCallEnded() with a given Window only on the
// thread that owns that Window. A success touches no shared memory but a
// read of the endpoint's ejection time; trips take the budget's mutex.
#ifndef BEVRPC_RPC_BALANCING_OUTLIER_DETECTOR_H_
#define BEVRPC_RPC_BALANCING_OUTLIER_DETECTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rpc/balancing/endpoint_health.h"
#include "transport/sync.h"

namespace bevrpc::balancing {

// ChannelOptions::outlier_detection.
struct OutlierDetection {
  // Off: endpoints are never ejected and calls are not counted.
  // Default: true.
  bool enabled = true;
  // Eject after this many calls on one connection in a row fail with
  // UNAVAILABLE. 0 turns this trigger off. Default: 5.
  int consecutive_failures = 5;
  // The short error-rate window: an exponential moving average of failures
  // per call with weight 1/short_window_calls (about the last that many
  // calls). Default: 50.
  int short_window_calls = 50;
  // Eject when the short average exceeds this percentage; 100 turns the
  // short window off. Default: 50.
  int short_window_error_percent = 50;
  // The long error-rate window, likewise. Default: 500.
  int long_window_calls = 500;
  // Eject when the long average exceeds this percentage; 100 turns it
  // off. Default: 20.
  int long_window_error_percent = 20;
  // Calls a connection must have counted (since it last tripped) before
  // its error rates can eject. Default: 20.
  int min_calls = 20;
  // The first ejection's length; each further one doubles it.
  // Default: 100 ms.
  absl::Duration base_ejection_time = absl::Milliseconds(100);
  // The longest ejection. Default: 30 s.
  absl::Duration max_ejection_time = absl::Seconds(30);
  // Each full interval an endpoint spends back in service undoes one
  // doubling. Default: 10 s.
  absl::Duration decay_interval = absl::Seconds(10);
  // The most endpoints ejected at once, as a percentage of the channel's
  // endpoints (rounded down), though always at least one of two or more.
  // Half keeps at least half the fleet serving even if the detector
  // misjudges (errors caused by the clients themselves, say), while still
  // ejecting a sick minority; Envoy's 10 % suits fleets of tens, where one
  // sick host is the usual case. Default: 50.
  int max_ejection_percent = 50;
};

// INVALID_ARGUMENT naming the field when `options` makes no sense.
absl::Status ValidateOutlierDetection(const OutlierDetection& options);

enum class CallOutcome { kSuccess, kFailure, kIgnored };
// How a call that ended with `code` counts (see above). Inline: it runs
// for every call.
inline CallOutcome ClassifyCall(absl::StatusCode code) {
  auto bit = [](absl::StatusCode c) { return 1u << static_cast<int>(c); };
  const uint32_t failures =
      bit(absl::StatusCode::kUnavailable) |
      bit(absl::StatusCode::kDeadlineExceeded) |
      bit(absl::StatusCode::kInternal) | bit(absl::StatusCode::kUnknown) |
      bit(absl::StatusCode::kDataLoss);
  const uint32_t ignored = bit(absl::StatusCode::kCancelled) |
                           bit(absl::StatusCode::kResourceExhausted);
  const int c = static_cast<int>(code);
  if (c == 0 || c > 31) return CallOutcome::kSuccess;
  if ((failures >> c) & 1) return CallOutcome::kFailure;
  if ((ignored >> c) & 1) return CallOutcome::kIgnored;
  return CallOutcome::kSuccess;
}

class OutlierDetector;

// A channel's endpoints that may be ejected, and the rule of how many may
// be at once. Thread-safe.
class EjectionBudget {
 public:
  explicit EjectionBudget(const OutlierDetection& options)
      : max_percent_(options.max_ejection_percent) {}
  EjectionBudget(const EjectionBudget&) = delete;
  EjectionBudget& operator=(const EjectionBudget&) = delete;

  // Endpoints ejected at once, at most, of `endpoints`.
  static int MaxEjected(int endpoints, int max_percent);

 private:
  friend class OutlierDetector;
  void Add(const OutlierDetector* d);
  void Remove(const OutlierDetector* d);
  // True if `candidate` may be ejected now, given the others.
  bool AllowsLocked(const OutlierDetector* candidate, int64_t now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_percent_;
  // Also guards every member detector's ejection bookkeeping: trips are
  // rare, and the count and the ejection must change together.
  mutable Mutex mu_;
  std::vector<const OutlierDetector*> members_ ABSL_GUARDED_BY(mu_);
};

class OutlierDetector {
 public:
  // A slot's counts. Touched only on its owner's thread.
  struct Window {
    int consecutive = 0;  // UNAVAILABLE in a row.
    int calls = 0;        // Counted since the last trip, up to min_calls.
    double short_rate = 0;
    double long_rate = 0;
  };

  // `health` is the endpoint's (ejections are written to it); `budget` the
  // channel's. Both are shared: kept alive as long as the detector.
  OutlierDetector(const OutlierDetection& options,
                  std::shared_ptr<EndpointHealth> health,
                  std::shared_ptr<EjectionBudget> budget);
  ~OutlierDetector();
  OutlierDetector(const OutlierDetector&) = delete;
  OutlierDetector& operator=(const OutlierDetector&) = delete;

  // A call counted in `window` ended with `code`, as the server or the
  // connection gave it. Loop thread of `window`'s owner.
  void OnCallEnded(Window& window, absl::StatusCode code) {
    const CallOutcome outcome = ClassifyCall(code);
    if (outcome == CallOutcome::kIgnored) return;
    const int64_t flagged = health_->ejected_until();
    if (flagged != 0 && OnCallWhileFlagged(window, outcome, flagged)) return;
    if (outcome == CallOutcome::kSuccess) {
      window.consecutive = 0;
      Count(window, 0.0);
      return;
    }
    if (code == absl::StatusCode::kUnavailable) ++window.consecutive;
    Count(window, 1.0);
    if (Tripped(window)) Eject(window);
  }

  // Times ejected so far, and how long the current ejection has left
  // (zero when not ejected). Any thread.
  int ejections() const { return ejections_.load(std::memory_order_relaxed); }
  absl::Duration ejection_left() const;

 private:
  void Count(Window& window, double failed) const {
    window.short_rate += (failed - window.short_rate) * short_alpha_;
    window.long_rate += (failed - window.long_rate) * long_alpha_;
    if (window.calls < options_.min_calls) ++window.calls;
  }
  bool Tripped(const Window& window) const;
  // Ejected: the call is ignored. On probation: a failure ejects again, a
  // success ends the probation. True when the call needs nothing more.
  bool OnCallWhileFlagged(Window& window, CallOutcome outcome, int64_t until);
  void Eject(Window& window);

  const OutlierDetection options_;
  const double short_alpha_;
  const double long_alpha_;
  const std::shared_ptr<EndpointHealth> health_;
  const std::shared_ptr<EjectionBudget> budget_;
  std::atomic<int> ejections_{0};
  // Doublings of the next ejection, and when the last one ended (0: none
  // yet), for the decay. Under budget_->mu_.
  int level_ = 0;
  int64_t back_since_ = 0;

  friend class EjectionBudget;
};

}  // namespace bevrpc::balancing

#endif  // BEVRPC_RPC_BALANCING_OUTLIER_DETECTOR_H_
