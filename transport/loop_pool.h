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
  ~LoopPool();

  // Round-robin choice of a loop. Thread-safe.
  EventLoop* Next();
  EventLoop* loop(int i) const { return loops_[i].get(); }
  int size() const { return static_cast<int>(loops_.size()); }

  // Quits every loop and joins its thread. Idempotent.
  void Stop();

 private:
  LoopPool() = default;

  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
  std::atomic<uint32_t> next_{0};
  bool stopped_ = false;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_LOOP_POOL_H_
