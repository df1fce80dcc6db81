// Cancel storms ("rapid reset") against the real Server over loopback, from
// a raw client that writes REQUEST + CANCEL pairs as fast as the socket
// takes them (docs/protocol.md, "Cancel storms"):
//
//  - handlers that do not stop when cancelled keep their call's slot, so a
//    connection never has more than max_concurrent_calls_per_connection of
//    them running, however fast it cancels; the calls beyond get
//    RESOURCE_EXHAUSTED, and every slot comes back afterwards (streams,
//    unary calls, and worker-pool handlers skipped in the queue). The
//    handlers hold their calls until the test lets them go, so the counts
//    are exact, and a few thousand pairs show it;
//  - a client over the early-cancel budget gets GOAWAY RESOURCE_EXHAUSTED
//    and is closed, while another connection keeps working; one within it
//    (paced, and past the burst so the refill matters) stays open; cancels
//    of calls older than early_cancel_time, or past half their deadline,
//    never count; completed calls earn tokens back, up to the burst.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/testing/raw_client.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using testing::RawClient;

constexpr char kSlowStream[] = "bevrpc.test.Storm/SlowStream";
constexpr char kSlowUnary[] = "bevrpc.test.Storm/SlowUnary";
constexpr char kSlowSync[] = "bevrpc.test.Storm/SlowSync";
constexpr char kPark[] = "bevrpc.test.Storm/Park";
constexpr int kMaxCalls = 100;
// How long a slow handler keeps its call, cancelled or not.
constexpr absl::Duration kHold = absl::Milliseconds(20);
// The REQUEST + CANCEL pairs of an unpaced storm: far more than kMaxCalls,
// and past early_cancel_burst in the budget test.
constexpr int64_t kStormPairs = 5000;

// Counts the handlers of one method holding a call at once: Enter() when
// the handler starts, Exit() just before it lets go of the call (so the
// count is never above the server's own). Thread-safe.
struct Gauge {
  void Enter() {
    started.fetch_add(1);
    const int now = running.fetch_add(1) + 1;
    int seen = max.load();
    while (now > seen && !max.compare_exchange_weak(seen, now)) {
    }
  }
  void Exit() { running.fetch_sub(1); }

  std::atomic<int> running{0};
  std::atomic<int> max{0};
  std::atomic<int64_t> started{0};
};

// Holds each handler's Completion for kHold, whether or not the call was
// cancelled meanwhile (a handler that does not watch for cancellation); or,
// between HoldUntilRelease() and Release(), until Release(). Thread-safe.
class Holder {
 public:
  Holder() : thread_([this] { Run(); }) {}
  ~Holder() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    thread_.join();
  }

  // A handler's call: held for kHold.
  void Add(Completion done) {
    gauge_.Enter();
    MutexLock lock(&mu_);
    held_.push_back({absl::Now() + kHold, std::move(done)});
    cv_.Signal();
  }
  // From now on, finishes nothing until Release().
  void HoldUntilRelease() {
    MutexLock lock(&mu_);
    gated_ = true;
  }
  // Back to kHold; calls held longer than that finish at once.
  void Release() {
    {
      MutexLock lock(&mu_);
      gated_ = false;
    }
    cv_.SignalAll();
  }
  int running() const { return gauge_.running.load(); }
  int max_running() const { return gauge_.max.load(); }
  int64_t started() const { return gauge_.started.load(); }

 private:
  struct Held {
    absl::Time due;
    Completion done;
  };

  void Run() {
    MutexLock lock(&mu_);
    while (true) {
      if (held_.empty()) {
        if (stop_) return;
        cv_.Wait(&mu_);
        continue;
      }
      if (!stop_ && gated_) {
        cv_.Wait(&mu_);
        continue;
      }
      const absl::Time due = held_.front().due;
      if (!stop_ && absl::Now() < due) {
        cv_.WaitWithTimeout(&mu_, due - absl::Now());
        continue;
      }
      Completion done = std::move(held_.front().done);
      held_.pop_front();
      gauge_.Exit();
      mu_.Unlock();
      std::move(done).Finish(absl::OkStatus());
      mu_.Lock();
    }
  }

  Gauge gauge_;
  Mutex mu_;
  CondVar cv_;
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool gated_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// `timeout` 0: no deadline.
std::string RequestFrame(uint64_t id, const char* method,
                         absl::Duration timeout = absl::ZeroDuration()) {
  wire::FrameMeta meta;
  meta.set_call_id(id);
  meta.set_kind(wire::REQUEST);
  meta.set_method(method);
  meta.set_timeout_us(absl::ToInt64Microseconds(timeout));
  return testing::EncodeFrame(meta, "");  // An empty EchoRequest.
}

std::string CancelFrame(uint64_t id) {
  wire::FrameMeta meta;
  meta.set_call_id(id);
  meta.set_kind(wire::CANCEL);
  return testing::EncodeFrame(meta, "");
}

std::string PingFrame() {
  wire::FrameMeta meta;
  meta.set_kind(wire::PING);
  return testing::EncodeFrame(meta, "sync");
}

// Writes `bytes` and a PING, and reads up to the PONG: everything before
// it has been processed. Fails on anything but RESPONSEs and the PONG.
void WriteAndSync(RawClient& raw, const std::string& bytes) {
  ASSERT_TRUE(raw.Write(bytes + PingFrame()).ok());
  while (true) {
    absl::StatusOr<testing::Frame> f = raw.ReadFrame(absl::Seconds(5));
    ASSERT_TRUE(f.ok()) << f.status();
    if (f->meta.kind() == wire::PONG) return;
    ASSERT_EQ(f->meta.kind(), wire::RESPONSE) << testing::DescribeFrame(*f);
  }
}

// Expects GOAWAY RESOURCE_EXHAUSTED "too many cancelled calls", then close.
void ExpectCancelGoaway(RawClient& raw, const std::string& detail) {
  while (true) {
    absl::StatusOr<testing::Frame> f = raw.ReadFrame(absl::Seconds(5));
    ASSERT_TRUE(f.ok()) << f.status();
    if (f->meta.kind() == wire::RESPONSE) continue;
    ASSERT_EQ(f->meta.kind(), wire::GOAWAY) << testing::DescribeFrame(*f);
    EXPECT_EQ(f->meta.status_code(),
              static_cast<int>(absl::StatusCode::kResourceExhausted));
    EXPECT_NE(f->meta.status_message().find(detail), std::string::npos)
        << f->meta.status_message();
    break;
  }
  EXPECT_TRUE(raw.WaitForClose().ok());
}

// What a raw client saw of a storm.
struct StormStats {
  int64_t pairs_written = 0;
  int64_t ok = 0;         // RESPONSE OK
  int64_t exhausted = 0;  // RESPONSE RESOURCE_EXHAUSTED
  int64_t other = 0;      // any other RESPONSE
  std::string first_other;
  std::optional<wire::FrameMeta> goaway;
  bool closed = false;  // The server closed the connection.
  bool ponged = false;  // The PING after the last pair was answered.
};

// Reads every frame until the PONG, the connection's close, or `deadline`.
// Only reads (RawClient's buffer); the caller's thread only writes.
void ReadUntilPong(RawClient& raw, absl::Time deadline, StormStats* stats) {
  while (absl::Now() < deadline) {
    absl::StatusOr<testing::Frame> f = raw.ReadFrame(absl::Milliseconds(100));
    if (absl::IsDeadlineExceeded(f.status())) continue;
    if (!f.ok()) {
      stats->closed = absl::IsUnavailable(f.status());
      if (!stats->closed) ADD_FAILURE() << f.status();
      return;
    }
    switch (f->meta.kind()) {
      case wire::PONG:
        stats->ponged = true;
        return;
      case wire::GOAWAY:
        stats->goaway = f->meta;
        break;
      case wire::RESPONSE:
        if (f->meta.status_code() == 0) {
          ++stats->ok;
        } else if (f->meta.status_code() ==
                   static_cast<int>(absl::StatusCode::kResourceExhausted)) {
          ++stats->exhausted;
        } else if (stats->other++ == 0) {
          stats->first_other = testing::DescribeFrame(*f);
        }
        break;
      default:
        break;
    }
  }
}

// Writes `pairs` REQUEST + CANCEL pairs of `method` (call ids `first_id`
// up), `batch` pairs per write, no faster than `per_second` pairs a second
// (0: as fast as the server reads), then a PING; meanwhile a second thread
// reads every frame until the PONG or the close. Bounded by `limit`.
StormStats RunStorm(RawClient& raw, const char* method, int64_t pairs,
                    int batch, double per_second, uint64_t first_id = 1,
                    absl::Duration limit = absl::Seconds(30)) {
  StormStats stats;
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + limit;
  std::thread reader([&] { ReadUntilPong(raw, deadline, &stats); });
  bool open = true;
  for (int64_t done = 0; done < pairs && open && absl::Now() < deadline;) {
    if (per_second > 0) {
      const absl::Time due = start + absl::Seconds(done / per_second);
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    }
    std::string bytes;
    const int64_t n = std::min<int64_t>(batch, pairs - done);
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t id = first_id + static_cast<uint64_t>(done + i);
      bytes += RequestFrame(id, method);
      bytes += CancelFrame(id);
    }
    open = raw.Write(bytes, absl::Seconds(5)).ok();
    if (open) done += n;
    stats.pairs_written = done;
  }
  if (open) open = raw.Write(PingFrame(), absl::Seconds(5)).ok();
  reader.join();
  return stats;
}

class CancelStormTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options) {
    options.max_concurrent_calls_per_connection = kMaxCalls;
    server_ = std::make_unique<Server>(std::move(options));
    Holder* holder = &holder_;
    ASSERT_TRUE(server_
                    ->RegisterMethod(
                        ServerStreamingCallbackMethod<echo::EchoRequest,
                                                      echo::EchoResponse>(
                            kSlowStream,
                            [holder](ServerContext&, const echo::EchoRequest&,
                                     ServerWriter<echo::EchoResponse>,
                                     Completion done) {
                              holder->Add(std::move(done));
                            }))
                    .ok());
    ASSERT_TRUE(
        server_
            ->RegisterMethod(
                CallbackMethod<echo::EchoRequest, echo::EchoResponse>(
                    kSlowUnary,
                    [holder](ServerContext&, const echo::EchoRequest&,
                             echo::EchoResponse*, Completion done) {
                      holder->Add(std::move(done));
                    }))
            .ok());
    // Blocks its worker until sync_gate_ opens (a minute at most: a hang
    // guard).
    Gauge* sync = &sync_;
    Notification* gate = &sync_gate_;
    ASSERT_TRUE(
        server_
            ->RegisterMethod(SyncMethod<echo::EchoRequest, echo::EchoResponse>(
                kSlowSync,
                [sync, gate](ServerContext&, const echo::EchoRequest&,
                             echo::EchoResponse*) {
                  sync->Enter();
                  gate->WaitForNotificationWithTimeout(absl::Minutes(1));
                  sync->Exit();
                  return absl::OkStatus();
                }))
            .ok());
    // Holds its call until the client cancels it, and then lets go at once
    // (a handler that honours cancellation).
    Gauge* park = &park_;
    ASSERT_TRUE(server_
                    ->RegisterMethod(
                        ServerStreamingCallbackMethod<echo::EchoRequest,
                                                      echo::EchoResponse>(
                            kPark,
                            [park](ServerContext& ctx, const echo::EchoRequest&,
                                   ServerWriter<echo::EchoResponse>,
                                   Completion done) {
                              park->Enter();
                              auto held = std::make_shared<Completion>(
                                  std::move(done));
                              ctx.OnCancel([held, park] { park->Exit(); });
                            }))
                    .ok());
    ASSERT_TRUE(echo::RegisterEchoService(*server_).ok());
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    // Nothing left blocked by a test that failed half-way.
    holder_.Release();
    if (!sync_gate_.HasBeenNotified()) sync_gate_.Notify();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
  }

  std::unique_ptr<RawClient> Connect() {
    auto raw = RawClient::Connect(server_->port());
    EXPECT_TRUE(raw.ok()) << raw.status();
    return raw.ok() ? *std::move(raw) : nullptr;
  }

  // After a storm, once the held calls are let go: every slot is free
  // again, i.e. kMaxCalls calls at once all succeed on the same connection.
  // A handler that finishes on another thread frees its slot on the loop a
  // little later, and nothing tells the client when; so a batch that had a
  // call refused is retried once all its calls have ended. A slot that
  // never comes back fails every batch, up to the 30 s hang guard. Adds
  // the calls that succeeded to *succeeded if given.
  void ExpectAllSlotsFree(RawClient& raw, const char* method,
                          uint64_t first_id, int* succeeded = nullptr) {
    const absl::Time until = absl::Now() + absl::Seconds(30);
    uint64_t id = first_id;
    while (true) {
      std::string bytes;
      for (int i = 0; i < kMaxCalls; ++i) bytes += RequestFrame(id++, method);
      ASSERT_TRUE(raw.Write(bytes).ok());
      int ok = 0;
      int refused = 0;
      std::string refusal;
      while (ok + refused < kMaxCalls) {
        absl::StatusOr<testing::Frame> f = raw.ReadFrame(absl::Seconds(10));
        ASSERT_TRUE(f.ok()) << f.status() << " after " << ok + refused
                            << " answers";
        if (f->meta.kind() != wire::RESPONSE) continue;
        if (f->meta.status_code() == 0) {
          ++ok;
          continue;
        }
        ASSERT_EQ(f->meta.status_code(),
                  static_cast<int>(absl::StatusCode::kResourceExhausted))
            << testing::DescribeFrame(*f);
        ++refused;
        refusal = testing::DescribeFrame(*f);
      }
      if (succeeded != nullptr) *succeeded += ok;
      if (refused == 0) return;
      ASSERT_LT(absl::Now(), until)
          << refused << " of " << kMaxCalls << " calls still refused: "
          << refusal;
    }
  }

  // Declared before holder_, destroyed after it: the holder finishes the
  // calls it still holds while the server's loops exist.
  std::unique_ptr<Server> server_;
  Holder holder_;
  Gauge sync_;
  Notification sync_gate_;
  Gauge park_;
};

ServerOptions WithoutCancelBudget() {
  ServerOptions options;
  options.max_early_cancels_per_second = 0;  // Only the concurrency limit.
  return options;
}

// The rapid-reset pattern with the budget off: the storm runs to the end,
// exactly kMaxCalls handlers start (and hold their calls, cancelled or not,
// until the test lets them go), every other REQUEST is refused, and once
// the handlers let go every slot comes back.
TEST_F(CancelStormTest, StreamHandlersNeverExceedTheConcurrencyLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer(WithoutCancelBudget()));
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  holder_.HoldUntilRelease();
  StormStats stats = RunStorm(*raw, kSlowStream, kStormPairs, 500, 0);
  ASSERT_TRUE(stats.ponged) << "closed=" << stats.closed
                            << " written=" << stats.pairs_written;
  EXPECT_FALSE(stats.goaway.has_value());
  EXPECT_EQ(stats.pairs_written, kStormPairs);
  EXPECT_EQ(holder_.started(), kMaxCalls);
  EXPECT_EQ(holder_.max_running(), kMaxCalls);
  // Cancelled calls get no RESPONSE; refused ones get RESOURCE_EXHAUSTED.
  EXPECT_EQ(stats.exhausted, kStormPairs - kMaxCalls);
  EXPECT_EQ(stats.other, 0) << stats.first_other;
  EXPECT_EQ(stats.ok, 0);
  holder_.Release();
  ASSERT_NO_FATAL_FAILURE(ExpectAllSlotsFree(
      *raw, kSlowStream, static_cast<uint64_t>(kStormPairs) + 1));
}

TEST_F(CancelStormTest, UnaryHandlersNeverExceedTheConcurrencyLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServer(WithoutCancelBudget()));
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  holder_.HoldUntilRelease();
  StormStats stats = RunStorm(*raw, kSlowUnary, kStormPairs, 500, 0);
  ASSERT_TRUE(stats.ponged) << "closed=" << stats.closed;
  EXPECT_EQ(stats.pairs_written, kStormPairs);
  EXPECT_EQ(holder_.started(), kMaxCalls);
  EXPECT_EQ(holder_.max_running(), kMaxCalls);
  EXPECT_EQ(stats.exhausted, kStormPairs - kMaxCalls);
  EXPECT_EQ(stats.other, 0) << stats.first_other;
  EXPECT_EQ(stats.ok, 0);
  holder_.Release();
  ASSERT_NO_FATAL_FAILURE(ExpectAllSlotsFree(
      *raw, kSlowUnary, static_cast<uint64_t>(kStormPairs) + 1));
}

// Worker-pool handlers cancelled while queued are skipped; their slots
// must come back all the same. Every worker is first held by a call that
// is not cancelled, so each call of the storm that gets a slot waits in the
// queue, is cancelled there, and is skipped once the workers are let go.
TEST_F(CancelStormTest, SkippedWorkerPoolHandlersGiveTheirSlotsBack) {
  ASSERT_NO_FATAL_FAILURE(StartServer(WithoutCancelBudget()));
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  const int workers = ServerOptions().worker_threads;
  std::string busy;
  for (int id = 1; id <= workers; ++id) busy += RequestFrame(id, kSlowSync);
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(*raw, busy));
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (sync_.running.load() < workers && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(sync_.running.load(), workers);

  StormStats stats = RunStorm(*raw, kSlowSync, kStormPairs, 500, 0,
                              /*first_id=*/workers + 1);
  ASSERT_TRUE(stats.ponged) << "closed=" << stats.closed;
  EXPECT_EQ(stats.pairs_written, kStormPairs);
  // The queued calls keep their slots: kMaxCalls - workers of the storm's
  // calls got one, the rest were refused.
  EXPECT_EQ(stats.exhausted, kStormPairs - (kMaxCalls - workers));
  EXPECT_EQ(stats.other, 0) << stats.first_other;
  EXPECT_EQ(stats.ok, 0);
  EXPECT_EQ(sync_.started.load(), workers);

  sync_gate_.Notify();
  for (int answered = 0; answered < workers;) {
    absl::StatusOr<testing::Frame> f = raw->ReadFrame(absl::Seconds(10));
    ASSERT_TRUE(f.ok()) << f.status();
    ASSERT_EQ(f->meta.kind(), wire::RESPONSE) << testing::DescribeFrame(*f);
    ASSERT_LE(f->meta.call_id(), static_cast<uint64_t>(workers))
        << testing::DescribeFrame(*f);
    ASSERT_EQ(f->meta.status_code(), 0) << testing::DescribeFrame(*f);
    ++answered;
  }
  int succeeded = 0;
  ASSERT_NO_FATAL_FAILURE(
      ExpectAllSlotsFree(*raw, kSlowSync,
                         static_cast<uint64_t>(workers + kStormPairs) + 1,
                         &succeeded));
  // The queue is first in, first out: by the time the calls after the
  // storm ran, the workers had passed every queued call of the storm. None
  // of those ran: only the first calls and the ones after did.
  EXPECT_EQ(sync_.started.load(), workers + succeeded);
  EXPECT_EQ(sync_.max.load(), workers);
}

// Over the budget: GOAWAY RESOURCE_EXHAUSTED naming the reason, then
// close; a bystander connection's call open through the storm, and its
// calls before and after, succeed. The storm's handler honours
// cancellation, as most do: every REQUEST is accepted and cancelled at
// once, so without the budget the storm would run to the end at no cost to
// the client. The refill (one a second) is too slow to matter: the cancel
// after the burst is the one over.
TEST_F(CancelStormTest, StormOverTheBudgetGetsGoawayAndOthersKeepWorking) {
  ServerOptions options;
  options.max_early_cancels_per_second = 1;
  options.early_cancel_burst = 1000;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  auto channel =
      Channel::Create(absl::StrCat("127.0.0.1:", server_->port())).value();
  echo::EchoRequest req;
  req.set_message("bystander");
  echo::EchoResponse resp;
  CallOptions call_options;
  call_options.timeout = absl::Seconds(30);
  ASSERT_TRUE(
      channel->Call(echo::kEchoMethod, req, &resp, call_options).ok());
  // Held by its handler until after the storm.
  holder_.HoldUntilRelease();
  echo::EchoResponse held_resp;
  Notification held_done;
  absl::Status held_status;
  channel->CallAsync(kSlowUnary, req, &held_resp, call_options,
                     [&](absl::Status s) {
                       held_status = s;
                       held_done.Notify();
                     });
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (holder_.started() == 0 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(holder_.started(), 1);

  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  StormStats stats = RunStorm(*raw, kPark, kStormPairs, 500, 0);

  ASSERT_TRUE(stats.goaway.has_value())
      << "no GOAWAY after " << stats.pairs_written << " pairs, "
      << park_.started.load() << " handlers started";
  EXPECT_EQ(stats.goaway->status_code(),
            static_cast<int>(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(stats.goaway->status_message(),
            "too many cancelled calls: the client cancelled 1001 calls within "
            "early_cancel_time 1s of opening them, more than "
            "max_early_cancels_per_second 1 (early_cancel_burst 1000) allows");
  EXPECT_TRUE(stats.closed);
  EXPECT_FALSE(stats.ponged);
  // No frame after the one over the budget was handled.
  EXPECT_EQ(park_.started.load(), 1001);
  EXPECT_EQ(park_.max.load(), 1);

  holder_.Release();
  ASSERT_TRUE(held_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(held_status.ok()) << held_status;
  EXPECT_TRUE(
      channel->Call(echo::kEchoMethod, req, &resp, call_options).ok());
  EXPECT_EQ(resp.message(), "bystander");
}

// Within the budget: 3,000 early cancels at 1,000 a second against a
// bucket of 1,000 refilled at 2,000 a second. Without the refill the burst
// alone would run out a third of the way through.
TEST_F(CancelStormTest, CancelsWithinTheBudgetKeepTheConnectionOpen) {
  ServerOptions options;
  options.max_early_cancels_per_second = 2000;
  options.early_cancel_burst = 1000;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  StormStats stats = RunStorm(*raw, kSlowStream, 3000, 50, 1000);
  EXPECT_TRUE(stats.ponged) << "closed=" << stats.closed;
  EXPECT_FALSE(stats.goaway.has_value())
      << stats.goaway->status_message();
  EXPECT_EQ(stats.pairs_written, 3000);
  EXPECT_EQ(stats.other, 0) << stats.first_other;
  ASSERT_NO_FATAL_FAILURE(ExpectAllSlotsFree(*raw, kSlowUnary, 3001));
}

// Only cancels sooner than early_cancel_time after the REQUEST count, and
// the bucket allows exactly early_cancel_burst of them at once.
TEST_F(CancelStormTest, OnlyEarlyCancelsCountAndTheBurstIsExact) {
  ServerOptions options;
  options.early_cancel_time = absl::Milliseconds(300);
  options.max_early_cancels_per_second = 1;
  options.early_cancel_burst = 3;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);

  // Ten long-lived streams, cancelled after early_cancel_time: not counted.
  std::string open, cancel;
  for (uint64_t id = 1; id <= 10; ++id) {
    open += RequestFrame(id, kPark);
    cancel += CancelFrame(id);
  }
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(*raw, open));
  // Not a wait for an event: the calls must age past early_cancel_time
  // (300 ms) by the server's clock, which is what this test is about.
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(*raw, cancel));

  // Three early cancels: the whole burst.
  std::string early;
  for (uint64_t id = 11; id <= 13; ++id) {
    early += RequestFrame(id, kPark) + CancelFrame(id);
  }
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(*raw, early));

  // One more, well within a second (the refill is 1 a second): over.
  ASSERT_TRUE(raw->Write(RequestFrame(14, kPark) + CancelFrame(14)).ok());
  ExpectCancelGoaway(*raw,
                     "too many cancelled calls: the client cancelled 4 calls");
}

// A call cancelled after half its deadline budget is the client's deadline
// timer at work, not a storm: not counted.
TEST_F(CancelStormTest, CancelsAfterHalfTheDeadlineDoNotCount) {
  ServerOptions options;
  options.max_early_cancels_per_second = 1;
  options.early_cancel_burst = 1;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  std::string open, cancel;
  for (uint64_t id = 1; id <= 5; ++id) {
    open += RequestFrame(id, kPark, absl::Milliseconds(800));
    cancel += CancelFrame(id);
  }
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(*raw, open));
  absl::SleepFor(absl::Milliseconds(500));  // Over 400: half the budget.
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(*raw, cancel));
  // The one token is still there; the early cancel after it is not.
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(
      *raw, RequestFrame(6, kPark, absl::Seconds(10)) + CancelFrame(6)));
  ASSERT_TRUE(raw->Write(RequestFrame(7, kPark) + CancelFrame(7)).ok());
  ExpectCancelGoaway(*raw, "cancelled 2 calls");
}

// Every call answered with its handler's result earns a token back (up to
// the burst): a client that completes as many calls as it cancels early is
// never cut off, however fast; one that only cancels still is.
TEST_F(CancelStormTest, CompletedCallsEarnTokensBack) {
  ServerOptions options;
  options.max_early_cancels_per_second = 1;
  options.early_cancel_burst = 3;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  auto raw = Connect();
  ASSERT_NE(raw, nullptr);
  uint64_t id = 1;
  std::string mixed;
  for (int i = 0; i < 200; ++i) {
    mixed += RequestFrame(id, echo::kEchoMethod);  // Answered at once.
    ++id;
    mixed += RequestFrame(id, kPark) + CancelFrame(id);
    ++id;
  }
  mixed += RequestFrame(id++, echo::kEchoMethod);
  ASSERT_NO_FATAL_FAILURE(WriteAndSync(*raw, mixed));
  // The bucket is full again (3), never more: the fourth early cancel in a
  // row is over.
  std::string only_cancels;
  for (int i = 0; i < 4; ++i, ++id) {
    only_cancels += RequestFrame(id, kPark) + CancelFrame(id);
  }
  ASSERT_TRUE(raw->Write(only_cancels).ok());
  ExpectCancelGoaway(*raw, "cancelled 204 calls");
}

}  // namespace
}  // namespace bevrpc
