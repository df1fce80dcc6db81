#include "rpc/metrics/internal/thread_cells.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace bevrpc::metrics::internal {
namespace {

TEST(SlotAllocatorTest, RangesNeverCrossABlock) {
  SlotAllocator allocator(kBlockSlots, 4 * kBlockSlots);
  std::optional<uint32_t> a = allocator.Allocate(1000);
  std::optional<uint32_t> b = allocator.Allocate(100);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(*a, kBlockSlots);
  EXPECT_EQ(*b, 2 * kBlockSlots);  // 1000 + 100 would cross
  std::optional<uint32_t> c = allocator.Allocate(24);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(*c, 2 * kBlockSlots + 100);
  EXPECT_FALSE(allocator.Allocate(0).has_value());
  EXPECT_FALSE(allocator.Allocate(kBlockSlots + 1).has_value());
}

TEST(SlotAllocatorTest, ReusesFreedRangesAndRunsOut) {
  SlotAllocator allocator(kBlockSlots, 2 * kBlockSlots);
  std::optional<uint32_t> a = allocator.Allocate(kBlockSlots);
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(allocator.Allocate(1).has_value());
  allocator.Free(*a, kBlockSlots);
  EXPECT_FALSE(allocator.Allocate(1).has_value());  // reuse is by size
  EXPECT_EQ(allocator.Allocate(kBlockSlots), a);
}

TEST(ThreadCellsTest, ExitedThreadsAreFoldedIntoTheSum) {
  std::optional<uint32_t> base = AllocateSlots(SlotShape{1, 1});
  ASSERT_TRUE(base.has_value());
  const int live_before = LiveThreadsForTesting();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        std::atomic<uint64_t>* cells = ThreadCell(*base);
        AddInt(cells, 2);
        AddDouble(cells + 1, 0.5);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(LiveThreadsForTesting(), live_before);
  uint64_t ints = 0;
  double doubles = 0;
  SumSlots(*base, SlotShape{1, 1}, &ints, &doubles);
  EXPECT_EQ(ints, 8000u);
  EXPECT_EQ(doubles, 2000.0);
  FreeSlots(*base, SlotShape{1, 1});
}

TEST(ThreadCellsTest, FreedSlotsComeBackZeroed) {
  std::optional<uint32_t> base = AllocateSlots(SlotShape{3, 0});
  ASSERT_TRUE(base.has_value());
  AddInt(ThreadCell(*base) + 2, 7);
  std::thread([&] { AddInt(ThreadCell(*base) + 1, 5); }).join();
  FreeSlots(*base, SlotShape{3, 0});
  std::optional<uint32_t> again = AllocateSlots(SlotShape{3, 0});
  ASSERT_EQ(again, base);
  uint64_t ints[3];
  SumSlots(*again, SlotShape{3, 0}, ints, nullptr);
  EXPECT_EQ(ints[0] + ints[1] + ints[2], 0u);
  FreeSlots(*again, SlotShape{3, 0});
}

}  // namespace
}  // namespace bevrpc::metrics::internal
