// Tests for TokenBucket and RateLimitGroup on real loopback TCP connections
// (libevent ignores rate limits on bufferevent pairs).
//
// libevent refills buckets every tick (100 ms here) and starts a bucket with
// one tick's worth, so at R bytes/s sending N bytes takes about N/R seconds.
// The tests assert generous lower bounds and no tight upper bounds.
#include "transport/rate_limit.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "transport/address.h"
#include "transport/buffer.h"
#include "transport/connection.h"
#include "transport/event_loop.h"
#include "transport/listener.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::transport {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);
constexpr uint64_t kKiB = 1024;

using ::bevrpc::transport::testing::LoopThread;

// Counts received bytes and notes when `target` had all arrived.
class CountingHandler : public ConnectionHandler {
 public:
  size_t OnReadable(Buffer& input) override {
    MutexLock l(&mu_);
    received_ += input.size();
    input.Drain(input.size());
    if (target_ != 0 && received_ >= target_ && !done_.HasBeenNotified()) {
      done_at_ = absl::Now();
      done_.Notify();
    }
    return 1;
  }
  void OnClosed(const absl::Status& why) override {}

  void set_target(size_t n) {
    MutexLock l(&mu_);
    target_ = n;
  }
  size_t received() const {
    MutexLock l(&mu_);
    return received_;
  }
  // When the target arrived, or InfiniteFuture() if it did not in time.
  absl::Time AwaitDone(absl::Duration timeout) {
    if (!done_.WaitForNotificationWithTimeout(timeout)) {
      return absl::InfiniteFuture();
    }
    MutexLock l(&mu_);
    return done_at_;
  }

 private:
  mutable Mutex mu_;
  size_t received_ ABSL_GUARDED_BY(mu_) = 0;
  size_t target_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time done_at_ ABSL_GUARDED_BY(mu_);
  Notification done_;
};

class ClientHandler : public ConnectionHandler {
 public:
  size_t OnReadable(Buffer& input) override {
    input.Drain(input.size());
    return 1;
  }
  void OnClosed(const absl::Status& why) override {}
};

// A loop, a Listener on 127.0.0.1:0 whose accepted sockets become counted
// Connections, and helpers to connect clients to it.
class RateLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lt_ = std::make_unique<LoopThread>();
    absl::Status status;
    ASSERT_TRUE(lt_->RunOnLoop([&] {
      auto listener = Listener::Create(
          loop(), SocketAddress::Parse("127.0.0.1:0").value(), {},
          [this](int fd) {
            auto conn = Connection::Adopt(loop(), fd, ConnectionOptions());
            if (!conn.ok()) {
              ADD_FAILURE() << conn.status();
              return;
            }
            auto handler = std::make_unique<CountingHandler>();
            (*conn)->Start(handler.get());
            MutexLock l(&mu_);
            server_handlers_.push_back(std::move(handler));
            server_conns_.push_back(*std::move(conn));
            cv_.SignalAll();
          });
      if (!listener.ok()) {
        status = listener.status();
        return;
      }
      listener_ = *std::move(listener);
    }));
    ASSERT_TRUE(status.ok()) << status;
  }

  void TearDown() override {
    // Connections go before the buckets and groups they use.
    EXPECT_TRUE(lt_->RunOnLoop([&] {
      clients_.clear();
      MutexLock l(&mu_);
      server_conns_.clear();
      listener_.reset();
    }));
    group_.reset();
    bucket_.reset();
    lt_.reset();
  }

  EventLoop* loop() const { return lt_->loop(); }

  // Connects a client and waits until the server has accepted it; returns
  // its index in clients_ (and in the server's lists).
  void ConnectClient(size_t* index) {
    auto connected = std::make_shared<Notification>();
    auto result = std::make_shared<absl::Status>();
    absl::Status created;
    SocketAddress addr =
        SocketAddress::Parse(absl::StrCat("127.0.0.1:", listener_->port()))
            .value();
    ASSERT_TRUE(lt_->RunOnLoop([&] {
      auto c = Connection::Connect(loop(), addr, ConnectionOptions(),
                                   absl::Seconds(5),
                                   [connected, result](absl::Status s) {
                                     *result = s;
                                     connected->Notify();
                                   });
      if (!c.ok()) {
        created = c.status();
        return;
      }
      (*c)->Start(&client_handler_);
      clients_.push_back(*std::move(c));
    }));
    ASSERT_TRUE(created.ok()) << created;
    ASSERT_TRUE(connected->WaitForNotificationWithTimeout(kWait));
    ASSERT_TRUE(result->ok()) << *result;
    *index = clients_.size() - 1;
    absl::Time deadline = absl::Now() + kWait;
    MutexLock l(&mu_);
    while (server_conns_.size() <= *index) {
      absl::Duration left = deadline - absl::Now();
      ASSERT_GT(left, absl::ZeroDuration()) << "server never accepted";
      cv_.WaitWithTimeout(&mu_, left);
    }
  }

  CountingHandler* server_handler(size_t i) {
    MutexLock l(&mu_);
    return server_handlers_[i].get();
  }
  Connection* server_conn(size_t i) {
    MutexLock l(&mu_);
    return server_conns_[i].get();
  }

  // Writes `n` bytes on client `i` (on the loop); returns when it started.
  absl::Time Send(size_t i, size_t n) {
    absl::Time start;
    const std::string payload(n, 'r');
    EXPECT_TRUE(lt_->RunOnLoop([&] {
      start = absl::Now();
      clients_[i]->Write([&](Buffer& out) { out.Append(payload); });
    }));
    return start;
  }

  std::unique_ptr<LoopThread> lt_;
  std::unique_ptr<TokenBucket> bucket_;
  std::unique_ptr<RateLimitGroup> group_;
  std::unique_ptr<Listener> listener_;
  ClientHandler client_handler_;
  std::vector<std::unique_ptr<Connection>> clients_;  // Loop thread.
  Mutex mu_;
  CondVar cv_;  // Signalled when a connection is accepted.
  std::vector<std::unique_ptr<CountingHandler>> server_handlers_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Connection>> server_conns_ ABSL_GUARDED_BY(mu_);
};

TEST_F(RateLimitTest, CreateRejectsALimitWithNoRates) {
  EXPECT_EQ(TokenBucket::Create(RateLimit{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(RateLimitGroup::Create(loop(), RateLimit{}).ok());
}

TEST_F(RateLimitTest, RateLimitsNeedASocket) {
  auto bucket = TokenBucket::Create({.write_bytes_per_sec = 64 * kKiB}).value();
  absl::Status status;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    auto pair = Connection::Pair(loop(), ConnectionOptions()).value();
    status = pair.first->SetRateLimits(bucket.get(), nullptr);
  }));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

// The control for the tests below: without a limit the same transfer is
// quick, so a slow limited transfer is the limit's doing.
TEST_F(RateLimitTest, UnlimitedTransferIsFast) {
  size_t i;
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&i));
  constexpr size_t kBytes = 192 * kKiB;
  server_handler(i)->set_target(kBytes);
  absl::Time start = Send(i, kBytes);
  absl::Time done = server_handler(i)->AwaitDone(kWait);
  ASSERT_NE(done, absl::InfiniteFuture()) << server_handler(i)->received();
  EXPECT_LT(done - start, absl::Seconds(1));
}

TEST_F(RateLimitTest, PerConnectionWriteLimitSlowsTheSender) {
  bucket_ = TokenBucket::Create({.write_bytes_per_sec = 64 * kKiB}).value();
  size_t i;
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&i));
  absl::Status set;
  ASSERT_TRUE(lt_->RunOnLoop(
      [&] { set = clients_[i]->SetRateLimits(bucket_.get(), nullptr); }));
  ASSERT_TRUE(set.ok()) << set;

  constexpr size_t kBytes = 192 * kKiB;  // About 3 s at 64 KiB/s.
  server_handler(i)->set_target(kBytes);
  absl::Time start = Send(i, kBytes);
  absl::Time done = server_handler(i)->AwaitDone(absl::Seconds(8));
  ASSERT_NE(done, absl::InfiniteFuture())
      << "only " << server_handler(i)->received() << " bytes in 8 s";
  EXPECT_GE(done - start, absl::Milliseconds(1500));
}

TEST_F(RateLimitTest, PerConnectionReadLimitSlowsTheReceiver) {
  bucket_ = TokenBucket::Create({.read_bytes_per_sec = 64 * kKiB}).value();
  size_t i;
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&i));
  absl::Status set;
  ASSERT_TRUE(lt_->RunOnLoop(
      [&] { set = server_conn(i)->SetRateLimits(bucket_.get(), nullptr); }));
  ASSERT_TRUE(set.ok()) << set;

  constexpr size_t kBytes = 128 * kKiB;  // About 2 s at 64 KiB/s.
  server_handler(i)->set_target(kBytes);
  absl::Time start = Send(i, kBytes);
  absl::Time done = server_handler(i)->AwaitDone(absl::Seconds(8));
  ASSERT_NE(done, absl::InfiniteFuture())
      << "only " << server_handler(i)->received() << " bytes in 8 s";
  EXPECT_GE(done - start, absl::Milliseconds(1200));
}

TEST_F(RateLimitTest, BucketConfigIsPerConnectionNotShared) {
  // Two connections on one TokenBucket each get the full rate: together
  // they finish about as fast as one alone would.
  bucket_ = TokenBucket::Create({.write_bytes_per_sec = 64 * kKiB}).value();
  size_t c0, c1;
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&c0));
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&c1));
  absl::Status s0, s1;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    s0 = clients_[c0]->SetRateLimits(bucket_.get(), nullptr);
    s1 = clients_[c1]->SetRateLimits(bucket_.get(), nullptr);
  }));
  ASSERT_TRUE(s0.ok() && s1.ok()) << s0 << " " << s1;
  constexpr size_t kBytes = 64 * kKiB;  // About 1 s each at 64 KiB/s.
  server_handler(c0)->set_target(kBytes);
  server_handler(c1)->set_target(kBytes);
  absl::Time start = Send(c0, kBytes);
  Send(c1, kBytes);
  absl::Time d0 = server_handler(c0)->AwaitDone(absl::Seconds(6));
  absl::Time d1 = server_handler(c1)->AwaitDone(absl::Seconds(6));
  ASSERT_NE(d0, absl::InfiniteFuture());
  ASSERT_NE(d1, absl::InfiniteFuture());
  EXPECT_GE(d0 - start, absl::Milliseconds(600));
  EXPECT_LT(std::max(d0, d1) - start, absl::Milliseconds(1800))
      << "connections sharing a TokenBucket config shared one bucket";
}

TEST_F(RateLimitTest, GroupSharesOneLimitBetweenItsConnections) {
  group_ = RateLimitGroup::Create(loop(), {.write_bytes_per_sec = 64 * kKiB})
               .value();
  size_t c0, c1;
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&c0));
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&c1));
  absl::Status s0, s1;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    s0 = clients_[c0]->SetRateLimits(nullptr, group_.get());
    s1 = clients_[c1]->SetRateLimits(nullptr, group_.get());
  }));
  ASSERT_TRUE(s0.ok() && s1.ok()) << s0 << " " << s1;

  // 96 KiB each: alone at 64 KiB/s either would take about 1.4 s; sharing
  // 64 KiB/s between the two, both take about 2.9 s.
  constexpr size_t kBytes = 96 * kKiB;
  server_handler(c0)->set_target(kBytes);
  server_handler(c1)->set_target(kBytes);
  absl::Time start = Send(c0, kBytes);
  Send(c1, kBytes);

  // Half way, the group has let through about 64 KiB/s in total, split
  // between the two.
  absl::SleepFor(absl::Milliseconds(1500));
  size_t r0 = server_handler(c0)->received();
  size_t r1 = server_handler(c1)->received();
  absl::Duration elapsed = absl::Now() - start;
  double allowed = 64.0 * kKiB * absl::ToDoubleSeconds(elapsed) + 32 * kKiB;
  EXPECT_LE(r0 + r1, allowed) << "group limit exceeded: " << r0 << " + " << r1
                              << " bytes in " << elapsed;
  EXPECT_GE(r0, (r0 + r1) / 4) << r0 << " vs " << r1;
  EXPECT_GE(r1, (r0 + r1) / 4) << r0 << " vs " << r1;

  absl::Time d0 = server_handler(c0)->AwaitDone(absl::Seconds(6));
  absl::Time d1 = server_handler(c1)->AwaitDone(absl::Seconds(6));
  ASSERT_NE(d0, absl::InfiniteFuture()) << server_handler(c0)->received();
  ASSERT_NE(d1, absl::InfiniteFuture()) << server_handler(c1)->received();
  EXPECT_GE(std::min(d0, d1) - start, absl::Seconds(2))
      << "one connection had the whole group rate to itself";
}

TEST_F(RateLimitTest, ClosingALimitedConnectionLeavesTheGroupUsable) {
  group_ = RateLimitGroup::Create(loop(), {.write_bytes_per_sec = 256 * kKiB})
               .value();
  size_t c0, c1;
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&c0));
  ASSERT_NO_FATAL_FAILURE(ConnectClient(&c1));
  absl::Status s0, s1;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    s0 = clients_[c0]->SetRateLimits(nullptr, group_.get());
    s1 = clients_[c1]->SetRateLimits(nullptr, group_.get());
  }));
  ASSERT_TRUE(s0.ok() && s1.ok());
  Send(c0, 64 * kKiB);
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    clients_[c0]->Close(absl::OkStatus());
    clients_[c0].reset();
  }));
  server_handler(c1)->set_target(64 * kKiB);
  Send(c1, 64 * kKiB);
  EXPECT_NE(server_handler(c1)->AwaitDone(absl::Seconds(5)),
            absl::InfiniteFuture())
      << server_handler(c1)->received();
}

}  // namespace
}  // namespace bevrpc::transport
