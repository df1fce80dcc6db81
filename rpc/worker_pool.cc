#include "rpc/worker_pool.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc {
namespace {

WorkerPool::Options FixedOptions(int num_threads, size_t max_queued) {
  WorkerPool::Options o;
  o.min_threads = o.max_threads = std::max(num_threads, 1);
  o.max_queued = max_queued;
  return o;
}

}  // namespace

WorkerPool::WorkerPool(int num_threads, size_t max_queued)
    : WorkerPool(FixedOptions(num_threads, max_queued)) {}

WorkerPool::WorkerPool(Options options) : options_(std::move(options)) {
  MutexLock lock(&mu_);
  for (int i = 0; i < options_.min_threads; ++i) StartThreadLocked();
}

WorkerPool::~WorkerPool() { Shutdown(); }

void WorkerPool::StartThreadLocked() {
  size_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = threads_.size();
    threads_.emplace_back();
  }
  ++alive_;
  ++idle_;  // Until it takes a task.
  threads_[index] = std::thread([this, index] {
    pthread_setname_np(pthread_self(), options_.name.substr(0, 15).c_str());
    Work(index);
  });
}

void WorkerPool::JoinExited() {
  std::vector<std::thread> done;
  {
    MutexLock lock(&mu_);
    for (size_t index : exited_) {
      done.push_back(std::move(threads_[index]));
      free_slots_.push_back(index);
    }
    exited_.clear();
  }
  for (std::thread& t : done) t.join();
}

int WorkerPool::num_threads() const {
  MutexLock lock(&mu_);
  return alive_;
}

int WorkerPool::idle_threads() const {
  MutexLock lock(&mu_);
  return idle_;
}

size_t WorkerPool::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

absl::Status WorkerPool::Submit(absl::AnyInvocable<void()> task) {
  JoinExited();
  absl::Status refused;
  {
    MutexLock lock(&mu_);
    const size_t waiting = queue_.size();
    if (stopping_) {
      refused = absl::UnavailableError("server is shutting down");
    } else if (static_cast<size_t>(idle_) > waiting) {
      // An idle thread takes it.
    } else if (alive_ < options_.max_threads) {
      StartThreadLocked();
    } else if (options_.refuse_when_busy) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "server overloaded: all ", options_.max_threads, " ",
          options_.name, " threads are busy"));
    } else if (options_.max_queued != 0 && waiting >= options_.max_queued) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "server overloaded: ", waiting,
          " calls already wait for a worker thread (max_queued_calls ",
          options_.max_queued, ")"));
    }
    if (refused.ok()) {
      queue_.push_back(std::move(task));
      cv_.Signal();
      return absl::OkStatus();
    }
  }
  task = nullptr;  // Dropped outside the lock: it may run arbitrary code.
  return refused;
}

void WorkerPool::Shutdown() {
  std::vector<std::thread> threads;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
    threads.swap(threads_);
    exited_.clear();
    free_slots_.clear();
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::Work(size_t index) {
  while (true) {
    absl::AnyInvocable<void()> task;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) {
        if (alive_ > options_.min_threads) {
          if (!cv_.WaitWithTimeout(&mu_, options_.idle_timeout) &&
              queue_.empty() && !stopping_ && alive_ > options_.min_threads) {
            --alive_;
            --idle_;
            exited_.push_back(index);  // Joined by a later Submit().
            return;
          }
        } else {
          cv_.Wait(&mu_);
        }
      }
      if (queue_.empty()) {  // Stopping and drained.
        --alive_;
        --idle_;
        return;
      }
      task = std::move(queue_.front());
      queue_.pop_front();
      --idle_;
    }
    task();
    MutexLock lock(&mu_);
    ++idle_;
  }
}

}  // namespace bevrpc
