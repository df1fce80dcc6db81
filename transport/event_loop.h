// EventLoop: one libevent event_base driven by one thread, plus Timer.
//
//   auto loop = transport::EventLoop::Create().value();
//   std::thread t([&] { loop->Run(); });
//   loop->Post([] { /* runs on the loop thread */ });
//   loop->Quit();
//   t.join();
//
// Threading: Post(), Quit() and IsInLoopThread() may be called from any
// thread. Everything else, and every Timer, only on the loop thread (the
// thread inside Run(), or any thread before Run() starts).
//
// Embedding: EventLoop::Wrap() adopts an event_base the application owns and
// drives itself; bevrpc then never calls Run() on it.
#ifndef BEVRPC_TRANSPORT_EVENT_LOOP_H_
#define BEVRPC_TRANSPORT_EVENT_LOOP_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "transport/sync.h"
#include "absl/time/time.h"

struct event;
struct event_base;

namespace bevrpc::transport {

namespace internal {
struct EventDeleter {
  void operator()(event* e) const;
};
struct EventBaseDeleter {
  void operator()(event_base* b) const;
};
}  // namespace internal

using EventPtr = std::unique_ptr<event, internal::EventDeleter>;

class EventLoop {
 public:
  // A loop that owns a new event_base.
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  // A loop over an event_base the caller owns and runs; `base` must outlive
  // the EventLoop. The base must have been created after InitLibevent().
  static absl::StatusOr<std::unique_ptr<EventLoop>> Wrap(event_base* base);

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  // Runs tasks still queued, on the calling thread, then frees the base if
  // owned. Call after Run() has returned (or if it never ran).
  ~EventLoop();

  // Runs the loop on the calling thread until Quit(). Owned loops only.
  void Run();
  // Makes Run() return after the tasks posted before it. Thread-safe; works
  // before Run() has started too.
  void Quit();

  // Queues `task` to run on the loop thread, in order. Thread-safe. Tasks
  // never run inline from Post(), even when called on the loop thread.
  void Post(absl::AnyInvocable<void()> task);

  // True on the thread currently inside Run() (or, for a wrapped base, the
  // thread that last ran a task or callback of this loop).
  bool IsInLoopThread() const;

  event_base* base() const { return base_; }

 private:
  EventLoop(event_base* base, bool owned);
  absl::Status Init();
  static void OnWakeup(int fd, short what, void* arg);
  void RunPostedTasks();

  event_base* base_;
  bool owned_;
  EventPtr wakeup_;
  std::atomic<std::thread::id> loop_thread_{};

  Mutex mu_;
  std::vector<absl::AnyInvocable<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool wakeup_pending_ ABSL_GUARDED_BY(mu_) = false;
};

// A one-shot timer on a loop. Loop thread only. The callback runs on the loop
// thread, at most once per Start(), never after Cancel() or destruction.
class Timer {
 public:
  explicit Timer(EventLoop* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms the timer; a pending callback is replaced.
  void Start(absl::Duration after, absl::AnyInvocable<void()> callback);
  void Cancel();
  bool pending() const { return pending_; }

  // Timers alive in the process (diagnostics and tests of their bounds).
  static size_t live_count() {
    return live_.load(std::memory_order_relaxed);
  }

 private:
  static void OnFire(int fd, short what, void* arg);

  EventPtr event_;
  absl::AnyInvocable<void()> callback_;
  bool pending_ = false;
  static std::atomic<size_t> live_;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_EVENT_LOOP_H_
