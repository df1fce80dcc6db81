// LoopThread: an EventLoop run by its own thread, for tests.
//
//   LoopThread lt;
//   ASSERT_TRUE(lt.RunOnLoop([&] { /* on the loop thread */ }));
//
// The constructor returns once Run() has started; the destructor quits the
// loop and joins, aborting (rather than hanging the test) if Run() does not
// return within 10 s. Thread-safe.
#ifndef BEVRPC_TRANSPORT_TESTING_LOOP_THREAD_H_
#define BEVRPC_TRANSPORT_TESTING_LOOP_THREAD_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "transport/event_loop.h"
#include "transport/sync.h"

namespace bevrpc::transport::testing {

class LoopThread {
 public:
  static constexpr absl::Duration kWait = absl::Seconds(10);

  LoopThread() : loop_(EventLoop::Create().value()) {
    thread_ = std::thread([this] {
      loop_->Run();
      stopped_.Notify();
    });
    if (!RunOnLoop([] {})) {
      std::fprintf(stderr, "loop thread did not start\n");
      std::abort();
    }
  }

  ~LoopThread() {
    loop_->Quit();
    if (!stopped_.WaitForNotificationWithTimeout(kWait)) {
      std::fprintf(stderr, "EventLoop::Run() did not return after Quit()\n");
      std::abort();  // Fail loudly rather than hang the test.
    }
    thread_.join();
  }

  EventLoop* loop() const { return loop_.get(); }

  // Runs `fn` on the loop thread and waits for it. False on timeout.
  bool RunOnLoop(absl::AnyInvocable<void()> fn) {
    auto done = std::make_shared<Notification>();
    loop_->Post([fn = std::move(fn), done]() mutable {
      fn();
      done->Notify();
    });
    return done->WaitForNotificationWithTimeout(kWait);
  }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
  Notification stopped_;
};

}  // namespace bevrpc::transport::testing

#endif  // BEVRPC_TRANSPORT_TESTING_LOOP_THREAD_H_
