#include "rpc/balancing/outlier_detector.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc::balancing {
namespace {

std::string Text(int value) { return absl::StrCat(value); }
std::string Text(absl::Duration value) { return absl::FormatDuration(value); }

}  // namespace

absl::Status ValidateOutlierDetection(const OutlierDetection& o) {
  auto bad = [](absl::string_view field, const auto& value,
                absl::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outlier_detection.", field, " must be ", want, ", got ", Text(value)));
  };
  if (o.consecutive_failures < 0) {
    return bad("consecutive_failures", o.consecutive_failures, ">= 0");
  }
  if (o.short_window_calls < 1) {
    return bad("short_window_calls", o.short_window_calls, ">= 1");
  }
  if (o.long_window_calls < 1) {
    return bad("long_window_calls", o.long_window_calls, ">= 1");
  }
  if (o.short_window_error_percent < 0 || o.short_window_error_percent > 100) {
    return bad("short_window_error_percent", o.short_window_error_percent,
               "in [0, 100]");
  }
  if (o.long_window_error_percent < 0 || o.long_window_error_percent > 100) {
    return bad("long_window_error_percent", o.long_window_error_percent,
               "in [0, 100]");
  }
  if (o.min_calls < 0) return bad("min_calls", o.min_calls, ">= 0");
  if (o.base_ejection_time <= absl::ZeroDuration()) {
    return bad("base_ejection_time", o.base_ejection_time, "> 0");
  }
  if (o.max_ejection_time < o.base_ejection_time) {
    return bad("max_ejection_time", o.max_ejection_time,
               ">= base_ejection_time");
  }
  if (o.decay_interval <= absl::ZeroDuration()) {
    return bad("decay_interval", o.decay_interval, "> 0");
  }
  if (o.max_ejection_percent < 0 || o.max_ejection_percent > 100) {
    return bad("max_ejection_percent", o.max_ejection_percent, "in [0, 100]");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// EjectionBudget

int EjectionBudget::MaxEjected(int endpoints, int max_percent) {
  if (endpoints < 2) return 0;
  return std::max(1, endpoints * max_percent / 100);
}

void EjectionBudget::Add(const OutlierDetector* d) {
  MutexLock lock(&mu_);
  members_.push_back(d);
}

void EjectionBudget::Remove(const OutlierDetector* d) {
  MutexLock lock(&mu_);
  members_.erase(std::remove(members_.begin(), members_.end(), d),
                 members_.end());
}

bool EjectionBudget::AllowsLocked(const OutlierDetector* candidate,
                                  int64_t now) const {
  const int allowed =
      MaxEjected(static_cast<int>(members_.size()), max_percent_);
  int ejected = 0;
  for (const OutlierDetector* d : members_) {
    if (d != candidate && d->health_->ejected_until() > now) ++ejected;
  }
  return ejected < allowed;
}

// ---------------------------------------------------------------------------
// OutlierDetector

OutlierDetector::OutlierDetector(const OutlierDetection& options,
                                 std::shared_ptr<EndpointHealth> health,
                                 std::shared_ptr<EjectionBudget> budget)
    : options_(options),
      short_alpha_(1.0 / std::max(options.short_window_calls, 1)),
      long_alpha_(1.0 / std::max(options.long_window_calls, 1)),
      health_(std::move(health)),
      budget_(std::move(budget)) {
  budget_->Add(this);
}

OutlierDetector::~OutlierDetector() { budget_->Remove(this); }

bool OutlierDetector::Tripped(const Window& w) const {
  if (options_.consecutive_failures > 0 &&
      w.consecutive >= options_.consecutive_failures) {
    return true;
  }
  if (w.calls < options_.min_calls) return false;
  return (options_.short_window_error_percent < 100 &&
          w.short_rate * 100 > options_.short_window_error_percent) ||
         (options_.long_window_error_percent < 100 &&
          w.long_rate * 100 > options_.long_window_error_percent);
}

bool OutlierDetector::OnCallWhileFlagged(Window& window, CallOutcome outcome,
                                         int64_t until) {
  if (health_->now() < until) return true;  // Started before the ejection.
  if (outcome == CallOutcome::kFailure) {
    Eject(window);
    return true;
  }
  health_->ClearEjection(until);  // Probation passed.
  return false;
}

void OutlierDetector::Eject(Window& window) {
  window = Window();  // Counts afresh, ejected or not.
  MutexLock lock(&budget_->mu_);
  const int64_t now = health_->now();
  // Another slot of this endpoint ejected it meanwhile.
  if (health_->ejected_until() > now) return;
  if (!budget_->AllowsLocked(this, now)) return;
  const int64_t decay = absl::ToInt64Nanoseconds(options_.decay_interval);
  if (back_since_ != 0 && now > back_since_) {
    const int64_t undone = (now - back_since_) / decay;
    level_ = static_cast<int>(std::max<int64_t>(0, level_ - undone));
  }
  absl::Duration length = options_.base_ejection_time;
  for (int i = 0; i < level_ && length < options_.max_ejection_time; ++i) {
    length *= 2;
  }
  if (length >= options_.max_ejection_time) {
    length = options_.max_ejection_time;
  } else {
    ++level_;  // The next one doubles, until the cap.
  }
  const int64_t until = now + absl::ToInt64Nanoseconds(length);
  health_->set_ejected_until(until);
  back_since_ = until;
  ejections_.fetch_add(1, std::memory_order_relaxed);
}

absl::Duration OutlierDetector::ejection_left() const {
  const int64_t until = health_->ejected_until();
  if (until == 0) return absl::ZeroDuration();
  const int64_t now = health_->now();
  return until > now ? absl::Nanoseconds(until - now) : absl::ZeroDuration();
}

}  // namespace bevrpc::balancing
