// WorkerPool: threads running queued tasks, for handlers that block (the
// "sync" flavour) so they never stall an I/O loop. Fixed (min == max
// threads) for unary handlers; elastic for streaming handlers, which hold a
// thread for a stream's whole life: a thread is started when a task finds
// none idle (up to max_threads), and threads above min_threads exit after
// idle_timeout.
//
//   WorkerPool pool(4, /*max_queued=*/1000);
//   absl::Status s = pool.Submit([] { ... });  // RESOURCE_EXHAUSTED if full
//   pool.Shutdown();   // runs what is queued, then joins
//
//   WorkerPool streams(WorkerPool::Options{.min_threads = 0,
//                                          .max_threads = 256});
//
// Thread-safe.
#ifndef BEVRPC_RPC_WORKER_POOL_H_
#define BEVRPC_RPC_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "transport/sync.h"

namespace bevrpc {

class WorkerPool {
 public:
  struct Options {
    // Threads started at once and kept. Default: 4.
    int min_threads = 4;
    // Most threads at once; above min_threads they are started on demand.
    // Default: 4 (a fixed pool).
    int max_threads = 4;
    // Tasks waiting for a thread (when max_threads are busy); more are
    // refused with RESOURCE_EXHAUSTED. 0 = unbounded. Default: 0.
    size_t max_queued = 0;
    // With every one of max_threads busy, refuse at once
    // (RESOURCE_EXHAUSTED) instead of queuing. Default: false.
    bool refuse_when_busy = false;
    // Threads above min_threads exit after this long without a task.
    // Default: 10 s.
    absl::Duration idle_timeout = absl::Seconds(10);
    // Thread name (at most 15 characters show). Default: "bevrpc-worker".
    std::string name = "bevrpc-worker";
  };

  explicit WorkerPool(Options options);
  // A fixed pool of `num_threads`; `max_queued` bounds the waiting tasks
  // (0 = unbounded).
  explicit WorkerPool(int num_threads, size_t max_queued = 0);
  ~WorkerPool();  // Shutdown().

  // Queues a task. RESOURCE_EXHAUSTED when max_threads are busy and
  // max_queued tasks already wait, UNAVAILABLE after Shutdown(); the task
  // is dropped (destroyed before Submit() returns) in both cases.
  absl::Status Submit(absl::AnyInvocable<void()> task);
  // Stops accepting tasks, finishes the queued ones, joins. Idempotent.
  // Must not be called from a worker.
  void Shutdown();

  // Threads alive right now, those of them waiting for a task, and the
  // tasks waiting for a thread.
  int num_threads() const;
  int idle_threads() const;
  size_t queued() const;

 private:
  void StartThreadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void JoinExited();
  void Work(size_t index);

  const Options options_;
  mutable Mutex mu_;
  CondVar cv_;  // Signalled when a task is queued or stopping_ is set.
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int alive_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  // Every thread started and not yet joined, by index; exited_ lists the
  // ones that have returned (idle above min_threads), to join later.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> exited_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> free_slots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_WORKER_POOL_H_
