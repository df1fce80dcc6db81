#include "rpc/internal/byte_budget.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace bevrpc::internal {
namespace {

TEST(ByteBudgetTest, AdmitsUpToTheLimitAndRefusesBeyond) {
  ByteBudget budget(100);
  EXPECT_TRUE(budget.TryAcquire(60));
  EXPECT_TRUE(budget.TryAcquire(40));
  EXPECT_FALSE(budget.TryAcquire(1));
  EXPECT_EQ(budget.used(), 100u);
  EXPECT_FALSE(budget.over());
  budget.Release(40);
  EXPECT_TRUE(budget.TryAcquire(30));
  EXPECT_EQ(budget.used(), 90u);
  EXPECT_EQ(budget.peak(), 100u);
}

// One item larger than the whole budget goes alone, never forever refused.
TEST(ByteBudgetTest, AnItemLargerThanTheBudgetGoesAlone) {
  ByteBudget budget(100);
  EXPECT_TRUE(budget.TryAcquire(500));
  EXPECT_TRUE(budget.over());
  EXPECT_FALSE(budget.TryAcquire(1));
  budget.Release(500);
  EXPECT_TRUE(budget.TryAcquire(1));
  EXPECT_FALSE(budget.TryAcquire(500));  // Not alone now.
}

TEST(ByteBudgetTest, ZeroLimitIsUnlimited) {
  ByteBudget budget(0);
  EXPECT_TRUE(budget.TryAcquire(size_t{1} << 40));
  EXPECT_TRUE(budget.TryAcquire(size_t{1} << 40));
  EXPECT_FALSE(budget.over());
}

// A waiter is woken exactly once, by the release that makes room (or by
// any later release), never while nothing is released.
TEST(ByteBudgetTest, WaiterIsWokenOnceByARelease) {
  ByteBudget budget(100);
  ASSERT_TRUE(budget.TryAcquire(100));
  int woken = 0;
  EXPECT_FALSE(budget.AcquireOrNotify(10, [&] { ++woken; }));
  EXPECT_EQ(woken, 0);
  budget.Adjust(+5);  // Growth wakes no one.
  EXPECT_EQ(woken, 0);
  budget.Release(15);
  EXPECT_EQ(woken, 1);
  budget.Release(10);
  EXPECT_EQ(woken, 1) << "a waiter runs once";
  EXPECT_TRUE(budget.TryAcquire(10));
}

// Many threads taking and giving back never lose or invent a byte.
TEST(ByteBudgetTest, ConcurrentAcquireAndReleaseBalance) {
  ByteBudget budget(1000);
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (budget.TryAcquire(7)) {
          budget.Release(7);
        } else {
          refused++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_LE(budget.peak(), 1000u);
  EXPECT_EQ(refused.load(), 0) << "4 x 7 bytes always fit in 1000";
}

}  // namespace
}  // namespace bevrpc::internal
