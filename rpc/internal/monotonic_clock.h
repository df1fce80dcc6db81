// MonotonicNow(): time since an arbitrary epoch from a monotonic clock,
// cheap enough to read twice per call (latency metrics, traces, keepalive).
// Internal to rpc/.
//
//   const int64_t start = MonotonicNanos();
//   ...
//   histogram->Observe((MonotonicNanos() - start) * 1e-9);
//
// Where the kernel keeps time with the TSC itself (x86-64, clocksource
// "tsc": the kernel found it invariant and synchronised across CPUs), the
// clock is the TSC scaled by a factor calibrated once against
// CLOCK_MONOTONIC (about 2 ms, on the first read in the process). Reading
// it costs one `rdtsc`: about 40 ns in a VM where clock_gettime through
// the vDSO takes 130 ns (docs/performance.md, "Metrics on and off").
// Elsewhere it is std::chrono::steady_clock. Either way it never goes
// back; intervals agree with CLOCK_MONOTONIC to about 1e-4, so use it for
// durations, never to compare with another clock's readings.
//
// Thread-safe; any thread.
#ifndef BEVRPC_RPC_INTERNAL_MONOTONIC_CLOCK_H_
#define BEVRPC_RPC_INTERNAL_MONOTONIC_CLOCK_H_

#include <chrono>
#include <cstdint>

#include "absl/time/time.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace bevrpc::internal {
namespace clock_internal {

struct TscScale {
  bool use_tsc = false;
  double ns_per_tick = 0;
  uint64_t tsc0 = 0;
  int64_t ns0 = 0;
};

// Decides once whether the TSC can be used, and calibrates it.
TscScale Calibrate();

inline const TscScale& Scale() {
  static const TscScale scale = Calibrate();
  return scale;
}

inline int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace clock_internal

inline int64_t MonotonicNanos() {
#if defined(__x86_64__)
  const clock_internal::TscScale& s = clock_internal::Scale();
  if (s.use_tsc) {
    // A tick before tsc0 (another CPU's TSC a hair behind) counts as 0.
    const uint64_t ticks = __rdtsc() - s.tsc0;
    return s.ns0 + (static_cast<int64_t>(ticks) > 0
                        ? static_cast<int64_t>(static_cast<double>(ticks) *
                                               s.ns_per_tick)
                        : 0);
  }
#endif
  return clock_internal::SteadyNanos();
}

inline absl::Duration MonotonicNow() {
  return absl::Nanoseconds(MonotonicNanos());
}

// Whether MonotonicNanos() reads the TSC (for tests and the docs).
inline bool MonotonicClockUsesTsc() { return clock_internal::Scale().use_tsc; }

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_MONOTONIC_CLOCK_H_
