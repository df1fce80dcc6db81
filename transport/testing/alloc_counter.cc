#include "transport/testing/alloc_counter.h"

#include <event2/event.h>

#include <cstdlib>
#include <new>

namespace bevrpc::transport::testing {
namespace {

// Constant-initialised, so touching it never allocates.
thread_local int64_t t_allocations = 0;
thread_local int64_t t_libevent_allocations = 0;

void* CountedMalloc(size_t size) {
  ++t_allocations;
  return std::malloc(size);
}

void* CountedRealloc(void* p, size_t size) {
  ++t_allocations;
  return std::realloc(p, size);
}

void* LibeventMalloc(size_t size) {
  ++t_libevent_allocations;
  return CountedMalloc(size);
}

void* LibeventRealloc(void* p, size_t size) {
  ++t_libevent_allocations;
  return CountedRealloc(p, size);
}

void* NewOrThrow(size_t size) {
  void* p = CountedMalloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* AlignedNewOrThrow(size_t size, std::align_val_t align) {
  ++t_allocations;
  size_t a = static_cast<size_t>(align);
  size_t rounded = (size + a - 1) / a * a;
  void* p = std::aligned_alloc(a, rounded == 0 ? a : rounded);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

int64_t ThreadAllocations() { return t_allocations; }
int64_t ThreadLibeventAllocations() { return t_libevent_allocations; }

void InstallLibeventAllocationCounting() {
  event_set_mem_functions(LibeventMalloc, LibeventRealloc, std::free);
}

}  // namespace bevrpc::transport::testing

using bevrpc::transport::testing::AlignedNewOrThrow;
using bevrpc::transport::testing::NewOrThrow;

void* operator new(size_t size) { return NewOrThrow(size); }
void* operator new[](size_t size) { return NewOrThrow(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept {
  try {
    return NewOrThrow(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  try {
    return NewOrThrow(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(size_t size, std::align_val_t align) {
  return AlignedNewOrThrow(size, align);
}
void* operator new[](size_t size, std::align_val_t align) {
  return AlignedNewOrThrow(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
