// LatencyClock: a cheap clock for the client's call latencies (metrics),
// where a latency is the difference of two reads of this clock and is never
// compared with another clock's time. Internal to rpc/.
//
//   const int64_t start = LatencyClock::Now();       // any thread
//   ...
//   int64_t ns = LatencyClock::ToNanos(LatencyClock::Now() - start);
//
// Where the kernel keeps time with the CPU's invariant time-stamp counter
// (clocksource "tsc"), Now() reads the counter itself: about a third of what
// clock_gettime() costs in a VM, which matters at two reads per call. The
// kernel only keeps that clocksource while the counters of all CPUs agree,
// so a latency started on one thread and ended on another stays right to
// within a cache-line transfer; ToNanos() turns a negative difference into
// 0. The tick rate is measured once, against CLOCK_MONOTONIC_RAW, on the
// first use (about a millisecond). Anywhere else a tick is a nanosecond of
// std::chrono::steady_clock.
//
// Thread-safe.
#ifndef BEVRPC_RPC_INTERNAL_LATENCY_CLOCK_H_
#define BEVRPC_RPC_INTERNAL_LATENCY_CLOCK_H_

#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace bevrpc::internal {

class LatencyClock {
 public:
  // Ticks since an arbitrary epoch.
  static int64_t Now() {
    const Rate& rate = GetRate();
#if defined(__x86_64__)
    if (rate.tsc) return static_cast<int64_t>(__rdtsc());
#endif
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  // Nanoseconds in a difference of two Now()s; 0 if it is negative.
  static int64_t ToNanos(int64_t ticks) {
    if (ticks <= 0) return 0;
    const Rate& rate = GetRate();
    if (!rate.tsc) return ticks;
    return static_cast<int64_t>(static_cast<double>(ticks) * rate.ns_per_tick);
  }
  // True when Now() reads the time-stamp counter; its measured rate.
  static bool UsesTsc() { return GetRate().tsc; }
  static double NanosPerTick() { return GetRate().ns_per_tick; }

 private:
  struct Rate {
    bool tsc = false;
    double ns_per_tick = 1;
  };
  static const Rate& GetRate() {
    static const Rate rate = Measure();
    return rate;
  }
  static Rate Measure();
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_LATENCY_CLOCK_H_
