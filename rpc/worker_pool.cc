#include "rpc/worker_pool.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc {

WorkerPool::WorkerPool(int num_threads, size_t max_queued)
    : max_queued_(max_queued) {
  if (num_threads < 1) num_threads = 1;
  for (int i = 0; i < num_threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "bevrpc-worker");
      Work();
    });
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

absl::Status WorkerPool::Submit(absl::AnyInvocable<void()> task) {
  {
    MutexLock lock(&mu_);
    if (!stopping_ && (max_queued_ == 0 || queue_.size() < max_queued_)) {
      queue_.push_back(std::move(task));
      cv_.Signal();
      return absl::OkStatus();
    }
  }
  // Dropped outside the lock: destroying it may run arbitrary code.
  task = nullptr;
  MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("server is shutting down");
  return absl::ResourceExhaustedError(absl::StrCat(
      "server overloaded: ", queue_.size(),
      " calls already wait for a worker thread (max_queued_calls ",
      max_queued_, ")"));
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
