// ByteBudget: a thread-safe count of bytes held against a limit, shared by
// the parts of a server (its sessions) or of a channel (its connection
// slots). Internal to rpc/.
//
//   ByteBudget budget(64 << 20);
//   if (budget.TryAcquire(n)) { ...; budget.Release(n); }
//   // Or wait for room: `wake` runs once, on the thread of a later Release.
//   if (!budget.AcquireOrNotify(n, [=] { loop->Post(retry); })) { ... }
//
// A limit of 0 means unlimited. One item larger than the whole budget is
// let through when nothing else is held, so that it is slow rather than
// never admitted.
//
// Thread-safe. Acquire and release are one atomic operation each; the
// mutex is taken only by callers that must wait and by the release that
// wakes them.
#ifndef BEVRPC_RPC_INTERNAL_BYTE_BUDGET_H_
#define BEVRPC_RPC_INTERNAL_BYTE_BUDGET_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "transport/sync.h"

namespace bevrpc::internal {

class ByteBudget {
 public:
  explicit ByteBudget(size_t limit) : limit_(limit) {}
  ByteBudget(const ByteBudget&) = delete;
  ByteBudget& operator=(const ByteBudget&) = delete;

  size_t limit() const { return limit_; }
  size_t used() const {
    int64_t u = used_.load(std::memory_order_relaxed);
    return u < 0 ? 0 : static_cast<size_t>(u);
  }
  // The most ever held at once.
  size_t peak() const {
    return static_cast<size_t>(peak_.load(std::memory_order_relaxed));
  }
  bool over() const { return limit_ != 0 && used() > limit_; }

  // Takes `n` bytes if they fit under the limit (or nothing is held).
  bool TryAcquire(size_t n);
  // Like TryAcquire(); when the bytes do not fit, `wake` is kept and runs
  // exactly once, on the thread of the next Release() (or at destruction,
  // never: see ~ByteBudget). It must not block; post work to a loop.
  bool AcquireOrNotify(size_t n, absl::AnyInvocable<void()> wake);
  // Gives back bytes taken by TryAcquire()/AcquireOrNotify()/Adjust().
  void Release(size_t n);
  // Adds `delta` (either sign) without checking the limit: for holders
  // that report what they hold after the fact (a server session's unsent
  // output). A negative delta wakes waiters like Release().
  void Adjust(int64_t delta);

  // Waiters not yet woken are dropped, not run.
  ~ByteBudget() = default;

 private:
  void UpdatePeak(int64_t now);
  void WakeWaiters();

  const size_t limit_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<bool> has_waiters_{false};
  Mutex mu_;
  std::vector<absl::AnyInvocable<void()>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_BYTE_BUDGET_H_
