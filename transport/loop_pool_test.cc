// Tests for LoopPool: one thread per loop, round-robin Next(), idempotent
// Stop().
#include "transport/loop_pool.h"

#include <pthread.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "transport/sync.h"

namespace bevrpc::transport {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

// Runs `fn` on `loop` and waits for it. False on timeout.
bool RunOn(EventLoop* loop, absl::AnyInvocable<void()> fn) {
  auto done = std::make_shared<Notification>();
  loop->Post([fn = std::move(fn), done]() mutable {
    fn();
    done->Notify();
  });
  return done->WaitForNotificationWithTimeout(kWait);
}

TEST(LoopPoolTest, RejectsBadSizes) {
  EXPECT_EQ(LoopPool::Start(0, "io").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoopPool::Start(-3, "io").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LoopPoolTest, NextRoundRobins) {
  auto pool = LoopPool::Start(3, "rr").value();
  ASSERT_EQ(pool->size(), 3);
  std::set<EventLoop*> distinct;
  for (int i = 0; i < 3; ++i) distinct.insert(pool->loop(i));
  EXPECT_EQ(distinct.size(), 3u);

  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(pool->Next(), pool->loop(i)) << "round " << round;
    }
  }
}

TEST(LoopPoolTest, NextFromManyThreadsSpreadsEvenly) {
  constexpr int kThreads = 4;
  constexpr int kCallsPerThread = 3000;
  auto pool = LoopPool::Start(3, "even").value();
  std::vector<std::map<EventLoop*, int>> counts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) ++counts[t][pool->Next()];
    });
  }
  for (auto& t : threads) t.join();
  std::map<EventLoop*, int> total;
  for (auto& c : counts) {
    for (auto& [loop, n] : c) total[loop] += n;
  }
  ASSERT_EQ(total.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(total[pool->loop(i)], kThreads * kCallsPerThread / 3);
  }
}

TEST(LoopPoolTest, EachLoopRunsOnItsOwnNamedThread) {
  auto pool = LoopPool::Start(3, "iopool").value();
  std::vector<std::thread::id> ids(3);
  std::vector<std::string> names(3);
  std::vector<int> in_loop(3, 0);
  for (int i = 0; i < 3; ++i) {
    EventLoop* loop = pool->loop(i);
    ASSERT_TRUE(RunOn(loop, [&, i, loop] {
      ids[i] = std::this_thread::get_id();
      in_loop[i] = loop->IsInLoopThread();
      char name[32] = {};
      pthread_getname_np(pthread_self(), name, sizeof(name));
      names[i] = name;
    }));
  }
  EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), 3u);
  EXPECT_NE(ids[0], std::this_thread::get_id());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(in_loop[i]) << i;
    EXPECT_EQ(names[i], absl::StrCat("iopool", i));
    EXPECT_FALSE(pool->loop(i)->IsInLoopThread());  // Not on this thread.
  }
}

TEST(LoopPoolTest, TasksRunRightAfterStartReturns) {
  // Start() returns with every loop running: nothing posted is lost, and a
  // Stop() right away cannot be missed by a loop that had not started yet.
  for (int round = 0; round < 10; ++round) {
    auto pool = LoopPool::Start(2, "fast").value();
    std::atomic<int> ran{0};
    Notification both;
    for (int i = 0; i < 2; ++i) {
      pool->Next()->Post([&] {
        if (ran.fetch_add(1) == 1) both.Notify();
      });
    }
    ASSERT_TRUE(both.WaitForNotificationWithTimeout(kWait));
    pool->Stop();
  }
}

TEST(LoopPoolTest, StopIsIdempotent) {
  auto pool = LoopPool::Start(2, "stop").value();
  std::atomic<int> ran{0};
  ASSERT_TRUE(RunOn(pool->loop(0), [&] { ran.fetch_add(1); }));
  ASSERT_TRUE(RunOn(pool->loop(1), [&] { ran.fetch_add(1); }));
  pool->Stop();
  // Every loop has quit: nothing is running them any more.
  for (int i = 0; i < 2; ++i) EXPECT_FALSE(pool->loop(i)->IsInLoopThread());
  pool->Stop();
  pool->Stop();
  pool.reset();  // Destructor after Stop() is fine too.
  EXPECT_EQ(ran.load(), 2);
}

TEST(LoopPoolTest, DestructorStopsWithoutExplicitStop) {
  std::atomic<int> ran{0};
  {
    auto pool = LoopPool::Start(4, "dtor").value();
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(RunOn(pool->Next(), [&] { ran.fetch_add(1); }));
    }
  }
  EXPECT_EQ(ran.load(), 4);
}

}  // namespace
}  // namespace bevrpc::transport
