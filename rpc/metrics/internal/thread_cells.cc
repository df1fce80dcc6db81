#include "rpc/metrics/internal/thread_cells.h"

#include <pthread.h>

#include <algorithm>

#include "absl/base/thread_annotations.h"
#include "transport/sync.h"

namespace bevrpc::metrics::internal {
namespace {

void OnThreadExit(void* arg);

// Process-wide state; never destroyed, so threads exiting during static
// destruction still find it.
struct Global {
  Global() { pthread_key_create(&exit_key, &OnThreadExit); }

  Mutex mu;
  SlotAllocator allocator ABSL_GUARDED_BY(mu){kBlockSlots,
                                              kBlockSlots * kMaxBlocks};
  // Allocated ranges by base slot: what a folding thread must keep.
  std::map<uint32_t, SlotShape> ranges ABSL_GUARDED_BY(mu);
  std::vector<ThreadCells*> threads ABSL_GUARDED_BY(mu);
  // Cells of exited threads, summed.
  ThreadCells residue ABSL_GUARDED_BY(mu);
  pthread_key_t exit_key;
};

Global& G() {
  static Global* global = new Global();
  return *global;
}

CellBlock* ResidueBlock(Global& g, uint32_t index)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g.mu) {
  CellBlock* block = g.residue.blocks[index].load(std::memory_order_relaxed);
  if (block == nullptr) {
    block = new CellBlock();
    g.residue.blocks[index].store(block, std::memory_order_relaxed);
  }
  return block;
}

// Adds the thread's cells of every allocated range in block `index` to the
// residue.
void FoldBlock(Global& g, uint32_t index, const CellBlock& from)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(g.mu) {
  const uint32_t first = index << kBlockShift;
  for (auto it = g.ranges.lower_bound(first);
       it != g.ranges.end() && it->first < first + kBlockSlots; ++it) {
    const uint32_t offset = it->first - first;
    const SlotShape shape = it->second;
    CellBlock* to = nullptr;
    for (uint32_t i = 0; i < shape.size(); ++i) {
      const uint64_t v = from.cells[offset + i].load(std::memory_order_relaxed);
      if (v == 0) continue;  // zero bits are 0 and 0.0 alike
      if (to == nullptr) to = ResidueBlock(g, index);
      if (i < shape.ints) {
        AddInt(&to->cells[offset + i], v);
      } else {
        AddDouble(&to->cells[offset + i], BitsToDouble(v));
      }
    }
  }
}

void OnThreadExit(void* arg) {
  auto* cells = static_cast<ThreadCells*>(arg);
  Global& g = G();
  {
    MutexLock lock(&g.mu);
    for (uint32_t b = 0; b < kMaxBlocks; ++b) {
      CellBlock* block = cells->blocks[b].load(std::memory_order_relaxed);
      if (block != nullptr) FoldBlock(g, b, *block);
    }
    g.threads.erase(std::find(g.threads.begin(), g.threads.end(), cells));
  }
  for (uint32_t b = 0; b < kMaxBlocks; ++b) {
    delete cells->blocks[b].load(std::memory_order_relaxed);
  }
  delete cells;
  tls_cells = nullptr;
}

}  // namespace

std::atomic<uint64_t>* ThreadCellSlow(uint32_t slot) {
  ThreadCells* cells = tls_cells;
  if (cells == nullptr) {
    Global& g = G();
    cells = new ThreadCells();
    {
      MutexLock lock(&g.mu);
      g.threads.push_back(cells);
    }
    pthread_setspecific(g.exit_key, cells);
    tls_cells = cells;
  }
  std::atomic<CellBlock*>& entry = cells->blocks[slot >> kBlockShift];
  CellBlock* block = entry.load(std::memory_order_relaxed);
  if (block == nullptr) {
    block = new CellBlock();
    // Readers load it with acquire and must see the zeroed cells.
    entry.store(block, std::memory_order_release);
  }
  return &block->cells[slot & (kBlockSlots - 1)];
}

std::optional<uint32_t> SlotAllocator::Allocate(uint32_t size) {
  if (size == 0 || size > kBlockSlots) return std::nullopt;
  auto it = free_by_size_.find(size);
  if (it != free_by_size_.end() && !it->second.empty()) {
    const uint32_t base = it->second.back();
    it->second.pop_back();
    return base;
  }
  uint32_t base = next_;
  if ((base & (kBlockSlots - 1)) + size > kBlockSlots) {
    base = (base | (kBlockSlots - 1)) + 1;  // start of the next block
  }
  if (base > capacity_ || capacity_ - base < size) return std::nullopt;
  next_ = base + size;
  return base;
}

void SlotAllocator::Free(uint32_t base, uint32_t size) {
  free_by_size_[size].push_back(base);
}

std::optional<uint32_t> AllocateSlots(SlotShape shape) {
  Global& g = G();
  MutexLock lock(&g.mu);
  std::optional<uint32_t> base = g.allocator.Allocate(shape.size());
  if (base.has_value()) g.ranges[*base] = shape;
  return base;
}

void FreeSlots(uint32_t base, SlotShape shape) {
  Global& g = G();
  MutexLock lock(&g.mu);
  const uint32_t index = base >> kBlockShift;
  const uint32_t offset = base & (kBlockSlots - 1);
  auto zero = [&](const ThreadCells& cells) {
    CellBlock* block = cells.blocks[index].load(std::memory_order_acquire);
    if (block == nullptr) return;
    for (uint32_t i = 0; i < shape.size(); ++i) {
      block->cells[offset + i].store(0, std::memory_order_relaxed);
    }
  };
  zero(g.residue);
  for (const ThreadCells* cells : g.threads) zero(*cells);
  g.ranges.erase(base);
  g.allocator.Free(base, shape.size());
}

void SumSlots(uint32_t base, SlotShape shape, uint64_t* ints,
              double* doubles) {
  std::fill(ints, ints + shape.ints, 0);
  std::fill(doubles, doubles + shape.doubles, 0.0);
  Global& g = G();
  MutexLock lock(&g.mu);
  const uint32_t index = base >> kBlockShift;
  const uint32_t offset = base & (kBlockSlots - 1);
  auto add = [&](const ThreadCells& cells) {
    const CellBlock* block =
        cells.blocks[index].load(std::memory_order_acquire);
    if (block == nullptr) return;
    const std::atomic<uint64_t>* c = &block->cells[offset];
    for (uint32_t i = 0; i < shape.ints; ++i) {
      ints[i] += c[i].load(std::memory_order_relaxed);
    }
    for (uint32_t i = 0; i < shape.doubles; ++i) {
      doubles[i] +=
          BitsToDouble(c[shape.ints + i].load(std::memory_order_relaxed));
    }
  };
  add(g.residue);
  for (const ThreadCells* cells : g.threads) add(*cells);
}

int LiveThreadsForTesting() {
  Global& g = G();
  MutexLock lock(&g.mu);
  return static_cast<int>(g.threads.size());
}

}  // namespace bevrpc::metrics::internal
