#include "rpc/internal/byte_budget.h"

#include <utility>

namespace bevrpc::internal {

void ByteBudget::UpdatePeak(int64_t now) {
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak &&
         !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

bool ByteBudget::TryAcquire(size_t n) {
  const int64_t bytes = static_cast<int64_t>(n);
  int64_t before = used_.load(std::memory_order_seq_cst);
  // Compare-and-swap, not add-then-undo: an undo would have to wake
  // waiters, and two waiters failing in turn would wake each other forever.
  do {
    if (limit_ != 0 && before > 0 &&
        before + bytes > static_cast<int64_t>(limit_)) {
      return false;
    }
  } while (!used_.compare_exchange_weak(before, before + bytes,
                                        std::memory_order_seq_cst));
  UpdatePeak(before + bytes);
  return true;
}

bool ByteBudget::AcquireOrNotify(size_t n, absl::AnyInvocable<void()> wake) {
  if (TryAcquire(n)) return true;
  {
    MutexLock lock(&mu_);
    waiters_.push_back(std::move(wake));
    has_waiters_.store(true, std::memory_order_seq_cst);
  }
  // A Release() between the failed attempt and the registration would not
  // have seen the waiter: try once more. If it fits now, the registered
  // wake-up is harmless (the caller retries and finds nothing to do).
  if (TryAcquire(n)) return true;
  return false;
}

void ByteBudget::Release(size_t n) { Adjust(-static_cast<int64_t>(n)); }

void ByteBudget::Adjust(int64_t delta) {
  const int64_t now =
      used_.fetch_add(delta, std::memory_order_seq_cst) + delta;
  if (delta > 0) {
    UpdatePeak(now);
    return;
  }
  if (has_waiters_.load(std::memory_order_seq_cst)) WakeWaiters();
}

void ByteBudget::WakeWaiters() {
  std::vector<absl::AnyInvocable<void()>> waiters;
  {
    MutexLock lock(&mu_);
    waiters.swap(waiters_);
    has_waiters_.store(false, std::memory_order_seq_cst);
  }
  for (auto& wake : waiters) wake();
}

}  // namespace bevrpc::internal
