#include "rpc/internal/cancellation.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "transport/sync.h"

namespace bevrpc::internal {
namespace {

TEST(CancellationTest, RunsEveryRegisteredCallbackOnceWithTheReason) {
  Cancellation c;
  std::vector<absl::Status> seen;
  for (int i = 0; i < 3; ++i) {
    EXPECT_NE(c.Add([&seen](const absl::Status& why) { seen.push_back(why); }),
              0u);
  }
  EXPECT_EQ(c.size(), 3u);
  EXPECT_TRUE(c.reason().ok());
  c.Cancel(absl::DeadlineExceededError("late"));
  c.Cancel(absl::CancelledError("again"));  // The first reason stands.
  ASSERT_EQ(seen.size(), 3u);
  for (const absl::Status& s : seen) {
    EXPECT_EQ(s, absl::DeadlineExceededError("late"));
  }
  EXPECT_EQ(c.reason(), absl::DeadlineExceededError("late"));
  EXPECT_EQ(c.size(), 0u);
}

TEST(CancellationTest, RemovedCallbacksNeverRun) {
  Cancellation c;
  int runs = 0;
  uint64_t a = c.Add([&runs](const absl::Status&) { ++runs; });
  uint64_t b = c.Add([&runs](const absl::Status&) { runs += 10; });
  EXPECT_TRUE(c.Remove(a));
  EXPECT_FALSE(c.Remove(a));  // Twice is harmless.
  EXPECT_FALSE(c.Remove(0));
  c.Cancel(absl::CancelledError("x"));
  EXPECT_EQ(runs, 10);
  EXPECT_FALSE(c.Remove(b));  // Already ran.
}

TEST(CancellationTest, AddAfterCancelReturnsZeroAndDropsTheCallback) {
  Cancellation c;
  c.Cancel(absl::CancelledError("gone"));
  auto token = std::make_shared<int>(0);
  EXPECT_EQ(c.Add([token](const absl::Status&) { ++*token; }), 0u);
  EXPECT_EQ(token.use_count(), 1);  // Dropped, not kept.
  EXPECT_EQ(*token, 0);
  EXPECT_EQ(c.size(), 0u);
}

TEST(CancellationTest, ManyAddRemoveCyclesDoNotAccumulate) {
  Cancellation c;
  for (int i = 0; i < 100000; ++i) {
    uint64_t id = c.Add([](const absl::Status&) {});
    ASSERT_EQ(c.size(), 1u);
    ASSERT_TRUE(c.Remove(id));
  }
  EXPECT_EQ(c.size(), 0u);
}

TEST(CancellationTest, CallbackMayRemoveItselfAndOthers) {
  Cancellation c;
  uint64_t second = 0;
  int runs = 0;
  uint64_t first = 0;
  first = c.Add([&](const absl::Status&) {
    ++runs;
    EXPECT_FALSE(c.Remove(first));  // Running: no wait on its own thread.
    EXPECT_TRUE(c.Remove(second));  // Not run yet: never will.
  });
  second = c.Add([&](const absl::Status&) { runs += 10; });
  c.Cancel(absl::CancelledError("x"));
  EXPECT_EQ(runs, 1);
}

// Remove() from another thread while the callback runs returns only after
// the callback has returned (and been destroyed).
TEST(CancellationTest, RemoveWaitsForARunningCallback) {
  Cancellation c;
  Notification running;
  Notification release;
  std::atomic<bool> returned{false};
  uint64_t id = c.Add([&](const absl::Status&) {
    running.Notify();
    ASSERT_TRUE(release.WaitForNotificationWithTimeout(absl::Seconds(30)));
    returned = true;
  });
  std::thread canceller([&] { c.Cancel(absl::CancelledError("x")); });
  ASSERT_TRUE(running.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    EXPECT_FALSE(c.Remove(id));
    EXPECT_TRUE(returned.load());
    removed = true;
  });
  release.Notify();
  remover.join();
  canceller.join();
  EXPECT_TRUE(removed.load());
}

TEST(CancellationTest, ConcurrentAddRemoveAndCancel) {
  auto c = std::make_shared<Cancellation>();
  std::atomic<int> runs{0};
  std::atomic<int> never_run{0};
  std::atomic<int> added{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        uint64_t id = c->Add([&](const absl::Status&) { ++runs; });
        if (id == 0) continue;
        ++added;
        if (c->Remove(id)) ++never_run;
      }
    });
  }
  c->Cancel(absl::CancelledError("x"));
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c->size(), 0u);
  // Every registration either ran or was removed first, never both.
  EXPECT_EQ(runs.load() + never_run.load(), added.load());
}

TEST(CancellationTest, KeepsItsDeadline) {
  const absl::Time d = absl::Now() + absl::Seconds(3);
  EXPECT_EQ(Cancellation(d).deadline(), d);
  EXPECT_EQ(Cancellation().deadline(), absl::InfiniteFuture());
}

}  // namespace
}  // namespace bevrpc::internal
