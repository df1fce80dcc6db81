#include "rpc/worker_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

TEST(WorkerPoolTest, RunsEveryTaskOnAWorker) {
  WorkerPool pool(3);
  std::atomic<int> ran{0};
  std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> on_caller{false};
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(pool.Submit([&] {
      if (std::this_thread::get_id() == caller) on_caller = true;
      ran++;
    }));
  }
  pool.Shutdown();  // Finishes queued tasks.
  EXPECT_EQ(ran.load(), 1000);
  EXPECT_FALSE(on_caller.load());
}

TEST(WorkerPoolTest, TasksRunConcurrently) {
  WorkerPool pool(2);
  Notification both_running;
  std::atomic<int> running{0};
  for (int i = 0; i < 2; ++i) {
    pool.Submit([&] {
      if (++running == 2) both_running.Notify();
      both_running.WaitForNotificationWithTimeout(absl::Seconds(5));
    });
  }
  EXPECT_TRUE(both_running.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(WorkerPoolTest, SubmitAfterShutdownIsRefused) {
  WorkerPool pool(1);
  pool.Shutdown();
  pool.Shutdown();  // Idempotent.
  bool ran = false;
  EXPECT_FALSE(pool.Submit([&] { ran = true; }));
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace bevrpc
