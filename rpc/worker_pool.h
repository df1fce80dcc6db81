// WorkerPool: a fixed set of threads running queued tasks, for handlers that
// block (the "sync" flavour) so they never stall an I/O loop.
//
//   WorkerPool pool(4, /*max_queued=*/1000);
//   absl::Status s = pool.Submit([] { ... });  // RESOURCE_EXHAUSTED if full
//   pool.Shutdown();   // runs what is queued, then joins
//
// Thread-safe.
#ifndef BEVRPC_RPC_WORKER_POOL_H_
#define BEVRPC_RPC_WORKER_POOL_H_

#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "transport/sync.h"

namespace bevrpc {

class WorkerPool {
 public:
  // `max_queued` bounds the tasks waiting for a thread; 0 = unbounded.
  explicit WorkerPool(int num_threads, size_t max_queued = 0);
  ~WorkerPool();  // Shutdown().

  // Queues a task. RESOURCE_EXHAUSTED when max_queued tasks are already
  // waiting, UNAVAILABLE after Shutdown(); the task is dropped (destroyed
  // before Submit() returns) in both cases.
  absl::Status Submit(absl::AnyInvocable<void()> task);
  size_t max_queued() const { return max_queued_; }
  // Stops accepting tasks, finishes the queued ones, joins. Idempotent.
  // Must not be called from a worker.
  void Shutdown();

 private:
  void Work();

  Mutex mu_;
  CondVar cv_;  // Signalled when a task is queued or stopping_ is set.
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
  const size_t max_queued_;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_WORKER_POOL_H_
