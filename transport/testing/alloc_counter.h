// Allocation counting for tests: how many heap allocations the current
// thread has made, through C++ `operator new` (protobuf, Abseil, the
// standard library, bevrpc itself) and through libevent's allocator (evbuffer
// chains, events).
//
//   int main(int argc, char** argv) {
//     bevrpc::transport::testing::InstallLibeventAllocationCounting();
//     ...                                  // before any other libevent use
//   }
//   int64_t before = ThreadAllocations();
//   ...                                    // on the thread being measured
//   int64_t made = ThreadAllocations() - before;
//
// Linking this library replaces the global `operator new` / `operator
// delete` of the whole binary (thin wrappers over malloc/free that bump a
// thread-local counter), so only test binaries may depend on it. Counters are
// per thread: read a loop's counter on that loop (EventLoop::Post). Frees are
// not counted.
#ifndef BEVRPC_TRANSPORT_TESTING_ALLOC_COUNTER_H_
#define BEVRPC_TRANSPORT_TESTING_ALLOC_COUNTER_H_

#include <cstdint>

namespace bevrpc::transport::testing {

// Allocations (operator new plus libevent malloc/realloc) made by the calling
// thread since it started.
int64_t ThreadAllocations();

// The part of ThreadAllocations() made through libevent's allocator.
int64_t ThreadLibeventAllocations();

// Routes libevent's allocations through the counting wrappers. Must run
// before any other libevent function (event_set_mem_functions' rule), so
// call it first thing in main(). Not thread-safe; call once.
void InstallLibeventAllocationCounting();

}  // namespace bevrpc::transport::testing

#endif  // BEVRPC_TRANSPORT_TESTING_ALLOC_COUNTER_H_
