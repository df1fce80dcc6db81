// Per-thread cells behind Counter, Gauge and Histogram: the lock-free,
// allocation-free write path and the summing read path.
//
// Every series owns a range of "slots" (one per counter or gauge; one per
// bucket plus one for the sum for a histogram). Each thread that writes has
// its own cell for every slot, in blocks of kBlockSlots cells allocated the
// first time the thread touches a slot in that block. A write is a relaxed
// load and store of the calling thread's cell: only that thread writes it,
// so no read-modify-write and no shared cache line. A read sums the cell of
// every live thread plus the residue that exiting threads folded their
// cells into, under one process-wide lock.
//
//   std::optional<uint32_t> base = AllocateSlots({.ints = 1});
//   AddInt(ThreadCell(*base), 5);                   // any thread, hot path
//   uint64_t total; SumSlots(*base, {.ints = 1}, &total, nullptr);
//   FreeSlots(*base, {.ints = 1});                  // writers must be done
//
// This is internal to rpc/metrics; use metrics.h. Thread-safe.
#ifndef BEVRPC_RPC_METRICS_INTERNAL_THREAD_CELLS_H_
#define BEVRPC_RPC_METRICS_INTERNAL_THREAD_CELLS_H_

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

namespace bevrpc::metrics::internal {

inline constexpr uint32_t kBlockShift = 10;
inline constexpr uint32_t kBlockSlots = 1u << kBlockShift;
inline constexpr uint32_t kMaxBlocks = 4096;
// Slots 0 .. kBlockSlots-1 are the sink: writes to series that could not
// get slots of their own go there and are never read.
inline constexpr uint32_t kSinkSlot = 0;

struct CellBlock {
  std::atomic<uint64_t> cells[kBlockSlots] = {};
};

struct ThreadCells {
  std::atomic<CellBlock*> blocks[kMaxBlocks] = {};
};

// The calling thread's cells; nullptr until its first write. Constant
// initialised, so reading it is a plain TLS load.
inline thread_local ThreadCells* tls_cells = nullptr;

// Registers the thread (first write) and/or allocates the block, then
// returns the cell. Allocates; called once per thread and block.
std::atomic<uint64_t>* ThreadCellSlow(uint32_t slot);

// The calling thread's cell for `slot`. Cells of one allocated range are
// contiguous (a range never crosses a block), so `ThreadCell(base) + i` is
// the cell of slot base + i.
inline std::atomic<uint64_t>* ThreadCell(uint32_t slot) {
  ThreadCells* cells = tls_cells;
  if (cells != nullptr) {
    CellBlock* block =
        cells->blocks[slot >> kBlockShift].load(std::memory_order_relaxed);
    if (block != nullptr) return &block->cells[slot & (kBlockSlots - 1)];
  }
  return ThreadCellSlow(slot);
}

// Single-writer updates: only the owning thread writes its cells.
inline void AddInt(std::atomic<uint64_t>* cell, uint64_t n) {
  cell->store(cell->load(std::memory_order_relaxed) + n,
              std::memory_order_relaxed);
}
inline double BitsToDouble(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}
inline uint64_t DoubleToBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}
inline void AddDouble(std::atomic<uint64_t>* cell, double d) {
  cell->store(
      DoubleToBits(BitsToDouble(cell->load(std::memory_order_relaxed)) + d),
      std::memory_order_relaxed);
}

// What a range holds: `ints` integer cells followed by `doubles` double
// cells (a histogram: one int per bucket, then one double for the sum).
struct SlotShape {
  uint32_t ints = 0;
  uint32_t doubles = 0;
  uint32_t size() const { return ints + doubles; }
};

// Hands out ranges of slots, none crossing a block boundary, reusing freed
// ranges of the same size. Not thread-safe (the caller locks).
class SlotAllocator {
 public:
  // Slots [first_slot, capacity) are available.
  SlotAllocator(uint32_t first_slot, uint32_t capacity)
      : next_(first_slot), capacity_(capacity) {}
  // nullopt when `size` is 0 or above kBlockSlots, or space ran out.
  std::optional<uint32_t> Allocate(uint32_t size);
  void Free(uint32_t base, uint32_t size);

 private:
  uint32_t next_;
  uint32_t capacity_;
  std::map<uint32_t, std::vector<uint32_t>> free_by_size_;
};

// A fresh range of zeroed slots, or nullopt when the process-wide space
// (kMaxBlocks * kBlockSlots slots) is used up.
std::optional<uint32_t> AllocateSlots(SlotShape shape);
// Zeroes the range in every thread and returns it. No thread may write to
// it any more.
void FreeSlots(uint32_t base, SlotShape shape);
// Sums the range over all threads (live and exited): `ints` gets
// shape.ints values, `doubles` shape.doubles values.
void SumSlots(uint32_t base, SlotShape shape, uint64_t* ints, double* doubles);
// Threads currently holding cells (for tests and the benchmark).
int LiveThreadsForTesting();

}  // namespace bevrpc::metrics::internal

#endif  // BEVRPC_RPC_METRICS_INTERNAL_THREAD_CELLS_H_
