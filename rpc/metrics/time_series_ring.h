// A bounded ring of timestamped samples, newest last: what a live page
// keeps to show "the last N minutes" (one RegistrySnapshot, or a few
// numbers, per second) and to diff the newest sample against one N seconds
// older.
//
//   TimeSeriesRing<HistogramSnapshot> ring(/*capacity=*/300);  // 5 min at 1/s
//   ring.Push(absl::Now(), latency->Snapshot());   // each second; drops the
//                                                  // oldest beyond 300
//   const auto* newest = ring.Newest();
//   const auto* then = ring.AtOrBefore(newest->time - absl::Seconds(10));
//   if (then != nullptr) {
//     HistogramSnapshot last_10s = newest->value.Minus(then->value);
//     double p99 = last_10s.Quantile(0.99);
//     double qps = last_10s.count / absl::ToDoubleSeconds(newest->time -
//                                                         then->time);
//   }
//
// Memory is bounded by `capacity` samples. Not thread-safe: the owner
// serialises access (a page samples and renders under its own lock).
#ifndef BEVRPC_RPC_METRICS_TIME_SERIES_RING_H_
#define BEVRPC_RPC_METRICS_TIME_SERIES_RING_H_

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace bevrpc::metrics {

template <typename T>
class TimeSeriesRing {
 public:
  struct Sample {
    absl::Time time;
    T value;
  };

  // Keeps at most `capacity` samples (at least 1).
  explicit TimeSeriesRing(size_t capacity)
      : capacity_(std::max<size_t>(1, capacity)) {}

  size_t capacity() const { return capacity_; }
  size_t size() const { return samples_.size(); }
  bool empty() const { return samples_.empty(); }

  // Appends a sample; `time` should not go backwards. At capacity the
  // oldest sample is dropped.
  void Push(absl::Time time, T value) {
    if (samples_.size() < capacity_) {
      samples_.push_back(Sample{time, std::move(value)});
    } else {
      samples_[start_] = Sample{time, std::move(value)};
      start_ = (start_ + 1) % capacity_;
    }
  }

  // The i-th oldest sample, 0 <= i < size().
  const Sample& at(size_t i) const {
    return samples_[(start_ + i) % samples_.size()];
  }
  // The newest sample, or nullptr when empty.
  const Sample* Newest() const {
    return empty() ? nullptr : &at(size() - 1);
  }
  // The newest sample taken at or before `time`, or nullptr if all are
  // later.
  const Sample* AtOrBefore(absl::Time time) const {
    for (size_t i = size(); i > 0; --i) {
      if (at(i - 1).time <= time) return &at(i - 1);
    }
    return nullptr;
  }

 private:
  size_t capacity_;
  size_t start_ = 0;  // index of the oldest sample once full
  std::vector<Sample> samples_;
};

}  // namespace bevrpc::metrics

#endif  // BEVRPC_RPC_METRICS_TIME_SERIES_RING_H_
