#include "transport/loop_pool.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "transport/sync.h"

namespace bevrpc::transport {

absl::StatusOr<std::unique_ptr<LoopPool>> LoopPool::Start(int num_threads,
                                                          std::string name) {
  if (num_threads < 1 || num_threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("loop pool size ", num_threads, " is not in [1, 1024]"));
  }
  std::unique_ptr<LoopPool> pool(new LoopPool());
  for (int i = 0; i < num_threads; ++i) {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    if (!loop.ok()) return loop.status();
    pool->loops_.push_back(loop->get());
    pool->owned_.push_back(*std::move(loop));
  }
  for (int i = 0; i < num_threads; ++i) {
    EventLoop* loop = pool->loops_[i];
    Notification running;
    std::string thread_name = absl::StrCat(name, i).substr(0, 15);
    pool->threads_.emplace_back([loop, &running, thread_name] {
      pthread_setname_np(pthread_self(), thread_name.c_str());
      // Mark the loop thread before anyone can Post work that checks it.
      loop->Post([&running] { running.Notify(); });
      loop->Run();
    });
    running.WaitForNotification();
  }
  return pool;
}

std::unique_ptr<LoopPool> LoopPool::Borrow(std::vector<EventLoop*> loops) {
  std::unique_ptr<LoopPool> pool(new LoopPool());
  pool->loops_ = std::move(loops);
  return pool;
}

LoopPool::~LoopPool() { Stop(); }

EventLoop* LoopPool::Next() {
  uint32_t i = next_.fetch_add(1, std::memory_order_relaxed);
  return loops_[i % loops_.size()];
}

void LoopPool::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& loop : loops_) loop->Quit();
  for (auto& t : threads_) t.join();
}

}  // namespace bevrpc::transport
