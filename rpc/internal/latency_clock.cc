#include "rpc/internal/latency_clock.h"

#include <time.h>

#include <fstream>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace bevrpc::internal {
namespace {

#if defined(__x86_64__)
bool KernelKeepsTimeWithTsc() {
  std::ifstream in(
      "/sys/devices/system/clocksource/clocksource0/current_clocksource");
  std::string source;
  return static_cast<bool>(in >> source) && source == "tsc";
}

bool TscIsInvariant() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 ||
      eax < 0x80000007u) {
    return false;
  }
  __get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx);
  return (edx & (1u << 8)) != 0;
}

int64_t RawNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// One (counter, nanoseconds) pair: the clock read between two counter
// reads, keeping the tightest of a few tries so that an interruption
// between the reads does not skew it.
struct Pair {
  uint64_t tsc;
  int64_t ns;
};
Pair ReadPair() {
  Pair best{0, 0};
  uint64_t best_window = ~uint64_t{0};
  for (int i = 0; i < 16; ++i) {
    _mm_lfence();
    const uint64_t before = __rdtsc();
    _mm_lfence();
    const int64_t ns = RawNanos();
    _mm_lfence();
    const uint64_t after = __rdtsc();
    if (after > before && after - before < best_window) {
      best_window = after - before;
      best = {before + (after - before) / 2, ns};
    }
  }
  return best;
}
#endif

}  // namespace

LatencyClock::Rate LatencyClock::Measure() {
  Rate rate;
#if defined(__x86_64__)
  if (!KernelKeepsTimeWithTsc() || !TscIsInvariant()) return rate;
  // About a millisecond apart: the pairs' error (tens of nanoseconds) is
  // then a few parts in 100,000 of the rate.
  const Pair first = ReadPair();
  Pair last = first;
  while (last.ns - first.ns < 1000000) last = ReadPair();
  if (last.tsc <= first.tsc || last.ns <= first.ns) return rate;
  rate.tsc = true;
  rate.ns_per_tick = static_cast<double>(last.ns - first.ns) /
                     static_cast<double>(last.tsc - first.tsc);
#endif
  return rate;
}

}  // namespace bevrpc::internal
