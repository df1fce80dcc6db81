#include "rpc/worker_pool.h"

#include <atomic>
#include <memory>
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
    }).ok());
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
    ASSERT_TRUE(pool.Submit([&] {
      if (++running == 2) both_running.Notify();
      both_running.WaitForNotificationWithTimeout(absl::Seconds(5));
    }).ok());
  }
  EXPECT_TRUE(both_running.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(WorkerPoolTest, SubmitAfterShutdownIsRefused) {
  WorkerPool pool(1);
  pool.Shutdown();
  pool.Shutdown();  // Idempotent.
  bool ran = false;
  EXPECT_EQ(pool.Submit([&] { ran = true; }).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(ran);
}

// The queue is bounded: with the only thread busy and max_queued tasks
// waiting, the next Submit() is refused at once with RESOURCE_EXHAUSTED,
// and the refused task is destroyed, not run.
TEST(WorkerPoolTest, FullQueueRefusesWithResourceExhausted) {
  WorkerPool pool(1, /*max_queued=*/3);
  Notification started, release;
  ASSERT_TRUE(pool.Submit([&] {
    started.Notify();
    release.WaitForNotification();
  }).ok());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.Submit([&] { ran++; }).ok()) << i;
  }
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  absl::Status refused = pool.Submit([&, token = std::move(token)] { ran += 100; });
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("max_queued_calls 3"), absl::string_view::npos)
      << refused;
  EXPECT_TRUE(watch.expired()) << "the refused task was kept";
  release.Notify();
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 3);
}

// Elastic: threads start on demand up to max_threads (each blocked task
// gets its own), the next task is refused when refuse_when_busy, and idle
// threads above min_threads exit.
TEST(WorkerPoolTest, ElasticPoolGrowsToItsBoundThenRefusesAndShrinks) {
  WorkerPool::Options options;
  options.min_threads = 0;
  options.max_threads = 3;
  options.refuse_when_busy = true;
  options.idle_timeout = absl::Milliseconds(50);
  options.name = "test-stream";
  WorkerPool pool(options);
  EXPECT_EQ(pool.num_threads(), 0);
  Notification release;
  Mutex mu;
  CondVar started;
  int running = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.Submit([&] {
      {
        MutexLock lock(&mu);
        ++running;
        started.SignalAll();
      }
      release.WaitForNotification();
    }).ok()) << i;
  }
  {
    MutexLock lock(&mu);
    ASSERT_TRUE(started.WaitUntil(&mu, absl::Seconds(30),
                                  [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return running == 3;
                                  }))
        << "blocked tasks did not each get a thread";
  }
  EXPECT_EQ(pool.num_threads(), 3);
  absl::Status refused = pool.Submit([] {});
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("all 3 test-stream threads are busy"),
            absl::string_view::npos)
      << refused;
  release.Notify();
  // Threads exit on their idle timer, which signals nothing: poll the
  // count (bounded).
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (pool.num_threads() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(pool.num_threads(), 0) << "idle threads above min_threads stayed";
  // And it grows again.
  Notification ran;
  ASSERT_TRUE(pool.Submit([&] { ran.Notify(); }).ok());
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

}  // namespace
}  // namespace bevrpc
