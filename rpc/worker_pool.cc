#include "rpc/worker_pool.h"

#include <pthread.h>

#include <utility>

namespace bevrpc {

WorkerPool::WorkerPool(int num_threads) {
  if (num_threads < 1) num_threads = 1;
  for (int i = 0; i < num_threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "bevrpc-worker");
      Work();
    });
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

bool WorkerPool::Submit(absl::AnyInvocable<void()> task) {
  MutexLock lock(&mu_);
  if (stopping_) return false;
  queue_.push_back(std::move(task));
  cv_.Signal();
  return true;
}

void WorkerPool::Shutdown() {
  {
    MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    cv_.SignalAll();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void WorkerPool::Work() {
  while (true) {
    absl::AnyInvocable<void()> task;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      if (queue_.empty()) return;  // Stopping and drained.
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace bevrpc
