// LoopPool: N EventLoops, each run by its own thread ("I/O threads").
//
//   auto pool = transport::LoopPool::Start(2, "io").value();
//   pool->Next()->Post([] { ... });   // round-robin across loops
//   pool->Stop();                      // or let the destructor do it
//
// Thread-safe, except Stop() and the destructor, which must not be called
// from one of the pool's own threads.
#ifndef BEVRPC_TRANSPORT_LOOP_POOL_H_
#define BEVRPC_TRANSPORT_LOOP_POOL_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "transport/event_loop.h"

namespace bevrpc::transport {

class LoopPool {
 public:
  // Starts `num_threads` (>= 1) loops. Thread names are `name` + index.
  static absl::StatusOr<std::unique_ptr<LoopPool>> Start(int num_threads,
                                                         std::string name);
  // A pool over loops someone else runs (e.g. EventLoop::Wrap() of an
  // application's event_base). Borrowed: they must outlive the pool, and
  // Stop() leaves them running.
  static std::unique_ptr<LoopPool> Borrow(std::vector<EventLoop*> loops);
  ~LoopPool();

  // Round-robin choice of a loop. Thread-safe.
  EventLoop* Next();
  EventLoop* loop(int i) const { return loops_[i]; }
  int size() const { return static_cast<int>(loops_.size()); }

  // Quits every loop and joins its thread. Idempotent. No-op for borrowed
  // loops.
  void Stop();

  bool owns_loops() const { return !owned_.empty(); }

 private:
  LoopPool() = default;

  std::vector<EventLoop*> loops_;
  std::vector<std::unique_ptr<EventLoop>> owned_;
  std::vector<std::thread> threads_;
  std::atomic<uint32_t> next_{0};
  bool stopped_ = false;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_LOOP_POOL_H_
