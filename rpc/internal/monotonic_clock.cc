#include "rpc/internal/monotonic_clock.h"

#include <fstream>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace bevrpc::internal::clock_internal {
namespace {

#if defined(__x86_64__)
// The kernel uses the TSC as its clock only after checking that it is
// invariant and in step across CPUs; we trust it when the kernel does.
bool KernelClockIsTsc() {
  std::ifstream in(
      "/sys/devices/system/clocksource/clocksource0/current_clocksource");
  std::string name;
  return static_cast<bool>(in >> name) && name == "tsc";
}

bool InvariantTsc() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000007) return false;
  __cpuid(0x80000007, eax, ebx, ecx, edx);
  return (edx & (1u << 8)) != 0;
}
#endif

}  // namespace

TscScale Calibrate() {
  TscScale s;
#if defined(__x86_64__)
  if (!KernelClockIsTsc() || !InvariantTsc()) return s;
  // Both clocks read back to back, at the start and after about 2 ms; the
  // pair with the tightest bracket of each end wins (a preemption between
  // the two reads would skew one sample).
  auto sample = [](int64_t* ns, uint64_t* tsc) {
    int64_t best = INT64_MAX;
    for (int i = 0; i < 5; ++i) {
      const int64_t a = SteadyNanos();
      const uint64_t t = __rdtsc();
      const int64_t b = SteadyNanos();
      if (b - a < best) {
        best = b - a;
        *ns = a + (b - a) / 2;
        *tsc = t;
      }
    }
  };
  int64_t ns_a = 0, ns_b = 0;
  uint64_t tsc_a = 0, tsc_b = 0;
  sample(&ns_a, &tsc_a);
  while (SteadyNanos() - ns_a < 2'000'000) {
  }
  sample(&ns_b, &tsc_b);
  if (tsc_b <= tsc_a || ns_b <= ns_a) return s;
  s.ns_per_tick = static_cast<double>(ns_b - ns_a) /
                  static_cast<double>(tsc_b - tsc_a);
  // Outside 0.1-10 GHz something is wrong (a trapped or scaled TSC).
  if (s.ns_per_tick < 0.1 || s.ns_per_tick > 10) return TscScale();
  s.tsc0 = tsc_b;
  s.ns0 = ns_b;
  s.use_tsc = true;
#endif
  return s;
}

}  // namespace bevrpc::internal::clock_internal
