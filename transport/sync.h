// Mutex, MutexLock, CondVar and Notification over the C++ standard library.
//
//   Mutex mu;
//   int count ABSL_GUARDED_BY(mu);
//   { MutexLock lock(&mu); ++count; }
//
//   Notification ready;
//   std::thread t([&] { ready.Notify(); });
//   ready.WaitForNotificationWithTimeout(absl::Seconds(1));
//
// Why not absl::Mutex: Debian's Abseil is a prebuilt library without
// ThreadSanitizer instrumentation, so TSan cannot see the ordering its
// mutexes and notifications create and reports false races. These wrappers
// sit on pthreads, which TSan intercepts, and keep Abseil's thread-safety
// annotations. Thread-safe.
#ifndef BEVRPC_TRANSPORT_SYNC_H_
#define BEVRPC_TRANSPORT_SYNC_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace bevrpc {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // Takes the lock if it is free; true if taken.
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return mu_.try_lock();
  }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

class CondVar {
 public:
  // Atomically unlocks `mu`, waits for a signal (or a spurious wake-up), and
  // locks it again. Loop on the condition.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // As Wait(); returns false if `timeout` passed without a signal.
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    std::cv_status s = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout));
    lock.release();
    return s == std::cv_status::no_timeout;
  }
  // Waits until `done()` holds (true) or `timeout` passes (false); `done`
  // is evaluated with `mu` held.
  template <typename Predicate>
  bool WaitUntil(Mutex* mu, absl::Duration timeout, Predicate done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      WaitWithTimeout(mu, left);
    }
    return true;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A one-shot event: Notify() once, wait any number of times.
class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
    cv_.SignalAll();
  }
  bool HasBeenNotified() const {
    MutexLock lock(&mu_);
    return notified_;
  }
  void WaitForNotification() const {
    MutexLock lock(&mu_);
    while (!notified_) cv_.Wait(&mu_);
  }
  // True if notified within `timeout`.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) const {
    MutexLock lock(&mu_);
    return cv_.WaitUntil(&mu_, timeout, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return notified_;
    });
  }

 private:
  mutable Mutex mu_;
  mutable CondVar cv_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace bevrpc

#endif  // BEVRPC_TRANSPORT_SYNC_H_
