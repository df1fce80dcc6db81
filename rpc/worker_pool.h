// WorkerPool: a fixed set of threads running queued tasks, for handlers that
// block (the "sync" flavour) so they never stall an I/O loop.
//
//   WorkerPool pool(4);
//   pool.Submit([] { ... });
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
#include "transport/sync.h"

namespace bevrpc {

class WorkerPool {
 public:
  explicit WorkerPool(int num_threads);
  ~WorkerPool();  // Shutdown().

  // Queues a task; false (and the task is dropped) after Shutdown().
  bool Submit(absl::AnyInvocable<void()> task);
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
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_WORKER_POOL_H_
