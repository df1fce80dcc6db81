// Tests for EventLoop (Post, Quit, Run, Wrap, destruction) and Timer.
//
// Each loop runs on its own thread; every wait is bounded so that a broken
// loop fails the test instead of hanging it.
#include "transport/event_loop.h"

#include <event2/event.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "transport/libevent_init.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::transport {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

using ::bevrpc::transport::testing::LoopThread;

TEST(EventLoopTest, CreateGivesABase) {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status();
  EXPECT_NE((*loop)->base(), nullptr);
  EXPECT_FALSE((*loop)->IsInLoopThread());  // Not running anywhere yet.
}

TEST(EventLoopTest, PostFromManyThreadsRunsEveryTaskOnceInOrderPerPoster) {
  constexpr int kPosters = 8;
  constexpr int kTasksPerPoster = 5000;
  LoopThread lt;
  EventLoop* loop = lt.loop();

  // Written only on the loop thread; read after `all_done`.
  std::vector<std::vector<int>> seen(kPosters);
  std::atomic<int> ran{0};
  std::atomic<int> off_loop{0};
  Notification all_done;

  std::vector<std::thread> posters;
  for (int p = 0; p < kPosters; ++p) {
    posters.emplace_back([&, p] {
      for (int i = 0; i < kTasksPerPoster; ++i) {
        loop->Post([&, p, i] {
          if (!loop->IsInLoopThread()) off_loop.fetch_add(1);
          seen[p].push_back(i);
          if (ran.fetch_add(1) + 1 == kPosters * kTasksPerPoster) {
            all_done.Notify();
          }
        });
      }
    });
  }
  for (auto& t : posters) t.join();
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(kWait))
      << "only " << ran.load() << " tasks ran";
  // Give any duplicate run a chance to show up before checking counts.
  ASSERT_TRUE(lt.RunOnLoop([] {}));

  EXPECT_EQ(ran.load(), kPosters * kTasksPerPoster);
  EXPECT_EQ(off_loop.load(), 0);
  for (int p = 0; p < kPosters; ++p) {
    ASSERT_EQ(seen[p].size(), static_cast<size_t>(kTasksPerPoster))
        << "poster " << p;
    for (int i = 0; i < kTasksPerPoster; ++i) {
      ASSERT_EQ(seen[p][i], i) << "poster " << p << " out of order";
    }
  }
}

TEST(EventLoopTest, PostFromLoopThreadNeverRunsInline) {
  LoopThread lt;
  EventLoop* loop = lt.loop();
  std::atomic<bool> inner_ran{false};
  bool ran_inline = true;
  Notification inner_done;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    loop->Post([&] {
      inner_ran = true;
      inner_done.Notify();
    });
    ran_inline = inner_ran.load();
  }));
  EXPECT_FALSE(ran_inline);
  EXPECT_TRUE(inner_done.WaitForNotificationWithTimeout(kWait));
}

TEST(EventLoopTest, PostFromOtherThreadNeverRunsInline) {
  LoopThread lt;
  EventLoop* loop = lt.loop();
  // Block the loop so the posted task cannot run concurrently either.
  Notification release;
  Notification blocked;
  loop->Post([&] {
    blocked.Notify();
    release.WaitForNotificationWithTimeout(kWait);
  });
  ASSERT_TRUE(blocked.WaitForNotificationWithTimeout(kWait));
  std::atomic<bool> ran{false};
  Notification done;
  loop->Post([&] {
    ran = true;
    done.Notify();
  });
  EXPECT_FALSE(ran.load());
  release.Notify();
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(kWait));
}

TEST(EventLoopTest, TasksPostedByTasksRunAfterThoseAlreadyQueued) {
  LoopThread lt;
  EventLoop* loop = lt.loop();
  std::vector<int> order;  // Loop thread only until `done`.
  Notification done;
  // Queue A and B from the loop thread so that nothing else interleaves.
  loop->Post([&] {
    loop->Post([&] {  // A
      order.push_back(1);
      loop->Post([&] {  // C: queued behind B.
        order.push_back(3);
        loop->Post([&] {
          order.push_back(5);
          done.Notify();
        });
      });
      order.push_back(2);
    });
    loop->Post([&] { order.push_back(4); });  // B
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 4, 3, 5}));
}

TEST(EventLoopTest, IsInLoopThreadOnlyInsideRun) {
  LoopThread lt;
  EXPECT_FALSE(lt.loop()->IsInLoopThread());
  bool inside = false;
  ASSERT_TRUE(lt.RunOnLoop([&] { inside = lt.loop()->IsInLoopThread(); }));
  EXPECT_TRUE(inside);
}

TEST(EventLoopTest, DestructorRunsTasksStillQueued) {
  int ran = 0;
  {
    std::unique_ptr<EventLoop> loop = EventLoop::Create().value();
    loop->Post([&] { ++ran; });
    loop->Post([&] { ++ran; });
  }
  EXPECT_EQ(ran, 2);
}

TEST(EventLoopTest, TasksPostedWhileStoppingStillRun) {
  std::unique_ptr<EventLoop> loop = EventLoop::Create().value();
  Notification stopped;
  std::thread t([&] {
    loop->Run();
    stopped.Notify();
  });
  Notification started;
  loop->Post([&] { started.Notify(); });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  int ran = 0;
  loop->Post([&] {
    loop->Quit();
    loop->Post([&] { ++ran; });  // Queued after Quit: Run() or ~EventLoop.
  });
  ASSERT_TRUE(stopped.WaitForNotificationWithTimeout(kWait));
  t.join();
  loop.reset();
  EXPECT_EQ(ran, 1);
}

// The usage example at the top of event_loop.h starts a thread in Run() and
// calls Quit() right away. Run() must return even if Quit() happened to win
// the race with the thread entering Run().
TEST(EventLoopTest, HeaderExampleQuitRightAfterStartingThreadReturns) {
  constexpr int kRounds = 5;
  int hung = 0;
  int task_ran = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::unique_ptr<EventLoop> loop = EventLoop::Create().value();
    Notification returned;
    std::thread t([&] {
      loop->Run();
      returned.Notify();
    });
    loop->Post([&] { ++task_ran; });
    loop->Quit();
    if (!returned.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      ++hung;
      // Unstick it so the test reports instead of hanging.
      while (!returned.WaitForNotificationWithTimeout(absl::Milliseconds(10))) {
        loop->Quit();
      }
    }
    t.join();
    loop.reset();
  }
  EXPECT_EQ(hung, 0) << "Run() ignored a Quit() issued just before it started, "
                     << hung << " of " << kRounds << " times";
  EXPECT_EQ(task_ran, kRounds);
}

TEST(EventLoopTest, WrapRunsPostedTasksOnTheThreadDrivingTheBase) {
  InitLibevent();
  event_base* base = event_base_new();
  ASSERT_NE(base, nullptr);
  {
    absl::StatusOr<std::unique_ptr<EventLoop>> wrapped = EventLoop::Wrap(base);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    EventLoop* loop = wrapped->get();
    EXPECT_EQ(loop->base(), base);

    std::atomic<bool> in_loop_thread{false};
    std::atomic<bool> ran{false};
    std::thread driver([&] {
      // The application drives its own base; run until the task has run.
      absl::Time deadline = absl::Now() + kWait;
      while (!ran.load() && absl::Now() < deadline) {
        timeval tv{0, 10 * 1000};
        event_base_loopexit(base, &tv);
        event_base_loop(base, 0);
      }
    });
    loop->Post([&] {
      in_loop_thread = loop->IsInLoopThread();
      ran = true;
    });
    driver.join();
    EXPECT_TRUE(ran.load());
    EXPECT_TRUE(in_loop_thread.load());
  }
  // The wrapper did not free the base: it is still usable.
  EXPECT_EQ(event_base_loop(base, EVLOOP_NONBLOCK), 1);  // No events.
  event_base_free(base);
}

TEST(EventLoopTest, WrapRejectsNull) {
  EXPECT_FALSE(EventLoop::Wrap(nullptr).ok());
}

// ---------------------------------------------------------------- Timer

TEST(TimerTest, FiresOnceOnTheLoopThread) {
  LoopThread lt;
  std::unique_ptr<Timer> timer;
  std::atomic<int> fired{0};
  std::atomic<bool> on_loop{false};
  Notification first;
  absl::Time started;
  absl::Time fired_at;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    timer = std::make_unique<Timer>(lt.loop());
    started = absl::Now();
    timer->Start(absl::Milliseconds(50), [&] {
      fired_at = absl::Now();
      on_loop = lt.loop()->IsInLoopThread();
      if (fired.fetch_add(1) == 0) first.Notify();
    });
    EXPECT_TRUE(timer->pending());
  }));
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(kWait));
  absl::SleepFor(absl::Milliseconds(200));
  bool pending = true;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    pending = timer->pending();
    timer.reset();
  }));
  EXPECT_EQ(fired.load(), 1);
  EXPECT_TRUE(on_loop.load());
  EXPECT_FALSE(pending);
  EXPECT_GE(fired_at - started, absl::Milliseconds(45));
}

TEST(TimerTest, CancelPreventsFiring) {
  LoopThread lt;
  std::unique_ptr<Timer> timer;
  std::atomic<int> fired{0};
  bool pending_after_cancel = true;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    timer = std::make_unique<Timer>(lt.loop());
    timer->Start(absl::Milliseconds(30), [&] { fired.fetch_add(1); });
    timer->Cancel();
    pending_after_cancel = timer->pending();
  }));
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(lt.RunOnLoop([&] { timer.reset(); }));
  EXPECT_EQ(fired.load(), 0);
  EXPECT_FALSE(pending_after_cancel);
}

TEST(TimerTest, CancelFromAnotherCallbackOnTheLoopPreventsFiring) {
  LoopThread lt;
  std::unique_ptr<Timer> victim;
  std::unique_ptr<Timer> killer;
  std::atomic<int> fired{0};
  Notification killed;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    victim = std::make_unique<Timer>(lt.loop());
    killer = std::make_unique<Timer>(lt.loop());
    victim->Start(absl::Milliseconds(150), [&] { fired.fetch_add(1); });
    killer->Start(absl::Milliseconds(20), [&] {
      victim->Cancel();
      killed.Notify();
    });
  }));
  ASSERT_TRUE(killed.WaitForNotificationWithTimeout(kWait));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(lt.RunOnLoop([&] {
    victim.reset();
    killer.reset();
  }));
  EXPECT_EQ(fired.load(), 0);
}

TEST(TimerTest, DestroyedWhilePendingNeverFires) {
  LoopThread lt;
  std::atomic<int> fired{0};
  ASSERT_TRUE(lt.RunOnLoop([&] {
    Timer timer(lt.loop());
    timer.Start(absl::Milliseconds(20), [&] { fired.fetch_add(1); });
  }));
  absl::SleepFor(absl::Milliseconds(150));
  ASSERT_TRUE(lt.RunOnLoop([] {}));
  EXPECT_EQ(fired.load(), 0);
}

TEST(TimerTest, DestroyedInsideItsOwnCallbackIsSafe) {
  LoopThread lt;
  Notification done;
  std::atomic<int> fired{0};
  ASSERT_TRUE(lt.RunOnLoop([&] {
    Timer* timer = new Timer(lt.loop());
    timer->Start(absl::Milliseconds(10), [&, timer] {
      fired.fetch_add(1);
      delete timer;  // ASan would flag any later touch of the Timer.
      done.Notify();
    });
  }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(lt.RunOnLoop([] {}));
  EXPECT_EQ(fired.load(), 1);
}

TEST(TimerTest, RestartReplacesPendingCallback) {
  LoopThread lt;
  std::unique_ptr<Timer> timer;
  std::atomic<int> first{0};
  std::atomic<int> second{0};
  Notification done;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    timer = std::make_unique<Timer>(lt.loop());
    timer->Start(absl::Milliseconds(20), [&] { first.fetch_add(1); });
    timer->Start(absl::Milliseconds(40), [&] {
      second.fetch_add(1);
      done.Notify();
    });
  }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(lt.RunOnLoop([&] { timer.reset(); }));
  EXPECT_EQ(first.load(), 0);
  EXPECT_EQ(second.load(), 1);
}

TEST(TimerTest, CanBeRestartedFromItsOwnCallback) {
  LoopThread lt;
  std::unique_ptr<Timer> timer;
  std::atomic<int> fired{0};
  Notification done;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    timer = std::make_unique<Timer>(lt.loop());
    timer->Start(absl::Milliseconds(5), [&] {
      fired.fetch_add(1);
      timer->Start(absl::Milliseconds(5), [&] {
        fired.fetch_add(1);
        done.Notify();
      });
    });
  }));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(lt.RunOnLoop([&] { timer.reset(); }));
  EXPECT_EQ(fired.load(), 2);  // Once per Start(), not more.
}

TEST(TimerTest, ZeroAndNegativeDelaysFireSoon) {
  LoopThread lt;
  std::unique_ptr<Timer> t1;
  std::unique_ptr<Timer> t2;
  Notification f1;
  Notification f2;
  ASSERT_TRUE(lt.RunOnLoop([&] {
    t1 = std::make_unique<Timer>(lt.loop());
    t2 = std::make_unique<Timer>(lt.loop());
    t1->Start(absl::ZeroDuration(), [&] { f1.Notify(); });
    t2->Start(-absl::Seconds(5), [&] { f2.Notify(); });
  }));
  EXPECT_TRUE(f1.WaitForNotificationWithTimeout(absl::Seconds(2)));
  EXPECT_TRUE(f2.WaitForNotificationWithTimeout(absl::Seconds(2)));
  ASSERT_TRUE(lt.RunOnLoop([&] {
    t1.reset();
    t2.reset();
  }));
}

}  // namespace
}  // namespace bevrpc::transport
