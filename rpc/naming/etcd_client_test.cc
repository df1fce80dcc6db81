// EtcdClient against a real etcd (tests/testing/etcd_process.h).
#include "rpc/naming/etcd_client.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_process.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::naming {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = bevrpc::testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    client_ = MakeClient({HostPort{"127.0.0.1",
                                   static_cast<uint16_t>(etcd_->client_port())}});
  }
  void TearDown() override {
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      watch_.reset();
      client_.reset();
    }));
  }

  std::unique_ptr<EtcdClient> MakeClient(std::vector<HostPort> members) {
    std::unique_ptr<EtcdClient> c;
    EXPECT_TRUE(lt_.RunOnLoop([&] {
      c = EtcdClient::Create(lt_.loop(), std::move(members)).value();
    }));
    return c;
  }

  // Runs `start(callback)` on the loop and waits for the callback's value.
  template <typename T, typename Start>
  T Await(Start start) {
    Notification done;
    std::optional<T> result;
    lt_.loop()->Post([&] {
      start([&](T r) {
        result.emplace(std::move(r));
        done.Notify();
      });
    });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(kWait));
    if (!result.has_value()) return T(absl::InternalError("no callback"));
    return *std::move(result);
  }

  absl::StatusOr<EtcdRange> Range(const std::string& prefix) {
    return Await<absl::StatusOr<EtcdRange>>(
        [&](auto cb) { client_->Range(prefix, PrefixEnd(prefix), cb); });
  }

  transport::testing::LoopThread lt_;
  std::unique_ptr<bevrpc::testing::EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<EtcdWatch> watch_;
};

TEST(PrefixEndTest, IncrementsLastByte) {
  EXPECT_EQ(PrefixEnd("a/echo/"), "a/echo0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
}

TEST_F(EtcdClientTest, RangeOfNothingHasARevisionAndNoKeys) {
  absl::StatusOr<EtcdRange> r = Range("nothing/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_GE(r->revision, 1);
}

TEST_F(EtcdClientTest, PutRangeDelete) {
  auto put = [&](std::string k, std::string v) {
    return Await<absl::StatusOr<int64_t>>(
        [&](auto cb) { client_->Put(k, v, 0, cb); });
  };
  absl::StatusOr<int64_t> rev1 = put("p/b", "2");
  ASSERT_TRUE(rev1.ok()) << rev1.status();
  absl::StatusOr<int64_t> rev2 = put("p/a", std::string("bin\0ary", 7));
  ASSERT_TRUE(rev2.ok()) << rev2.status();
  EXPECT_EQ(*rev2, *rev1 + 1);
  ASSERT_TRUE(etcd_->Put("q/other", "x").ok());  // outside the prefix

  absl::StatusOr<EtcdRange> r = Range("p/");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].key, "p/a");
  EXPECT_EQ(r->kvs[0].value, std::string("bin\0ary", 7));
  EXPECT_EQ(r->kvs[0].mod_revision, *rev2);
  EXPECT_EQ(r->kvs[1].key, "p/b");
  EXPECT_EQ(r->revision, *rev2 + 1);

  absl::StatusOr<int64_t> deleted = Await<absl::StatusOr<int64_t>>(
      [&](auto cb) { client_->DeleteRange("p/a", "", cb); });
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1);
  r = Range("p/");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "p/b");
}

struct WatchLog {
  Mutex mu;
  CondVar cv;
  std::vector<EtcdWatchUpdate> updates ABSL_GUARDED_BY(mu);
  std::optional<absl::Status> end ABSL_GUARDED_BY(mu);

  // Waits until `pred` holds over the updates so far.
  template <typename Pred>
  bool WaitFor(Pred pred) {
    absl::Time deadline = absl::Now() + kWait;
    MutexLock l(&mu);
    while (!pred(updates)) {
      if (absl::Now() >= deadline) return false;
      cv.WaitWithTimeout(&mu, deadline - absl::Now());
    }
    return true;
  }
};

TEST_F(EtcdClientTest, WatchSeesPutsAndDeletesInOrder) {
  absl::StatusOr<int64_t> rev = etcd_->Revision();
  ASSERT_TRUE(rev.ok()) << rev.status();
  WatchLog log;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    watch_ = client_
                 ->Watch(
                     "w/", PrefixEnd("w/"), *rev + 1,
                     [&](const EtcdWatchUpdate& u) {
                       MutexLock l(&log.mu);
                       log.updates.push_back(u);
                       log.cv.SignalAll();
                     },
                     [&](absl::Status s) {
                       MutexLock l(&log.mu);
                       log.end = s;
                       log.cv.SignalAll();
                     })
                 .value();
  }));
  ASSERT_TRUE(etcd_->Put("w/one", "1").ok());
  ASSERT_TRUE(etcd_->Put("x/outside", "1").ok());
  // A value longer than any single read, so it spans chunks and reads.
  std::string big(200000, 'v');
  ASSERT_TRUE(etcd_->Put("w/two", big).ok());
  ASSERT_TRUE(etcd_->Delete("w/one").ok());

  std::vector<EtcdEvent> events;
  ASSERT_TRUE(log.WaitFor([&](const std::vector<EtcdWatchUpdate>& us) {
    events.clear();
    for (const auto& u : us) {
      events.insert(events.end(), u.events.begin(), u.events.end());
    }
    return events.size() >= 3;
  }));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, EtcdEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.key, "w/one");
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[1].kv.key, "w/two");
  EXPECT_EQ(events[1].kv.value, big);
  EXPECT_EQ(events[2].type, EtcdEvent::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, "w/one");
  EXPECT_GT(events[2].kv.mod_revision, events[1].kv.mod_revision);
  MutexLock l(&log.mu);
  EXPECT_TRUE(log.updates.front().created);
  EXPECT_FALSE(log.end.has_value());
}

TEST_F(EtcdClientTest, WatchFromCompactedRevisionIsCanceled) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(etcd_->Put("c/k", "v").ok());
  absl::StatusOr<int64_t> rev = etcd_->Revision();
  ASSERT_TRUE(rev.ok());
  ASSERT_TRUE(etcd_->Compact(*rev).ok());
  WatchLog log;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    watch_ = client_
                 ->Watch(
                     "c/", PrefixEnd("c/"), 2,
                     [&](const EtcdWatchUpdate& u) {
                       MutexLock l(&log.mu);
                       log.updates.push_back(u);
                       log.cv.SignalAll();
                     },
                     [&](absl::Status s) {})
                 .value();
  }));
  ASSERT_TRUE(log.WaitFor([](const std::vector<EtcdWatchUpdate>& us) {
    for (const auto& u : us) {
      if (u.canceled) return true;
    }
    return false;
  }));
  MutexLock l(&log.mu);
  EXPECT_EQ(log.updates.back().compact_revision, *rev);
}

TEST_F(EtcdClientTest, WatchEndsUnavailableWhenEtcdDies) {
  WatchLog log;
  Notification ended;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    watch_ = client_
                 ->Watch(
                     "d/", PrefixEnd("d/"), 0,
                     [&](const EtcdWatchUpdate& u) {
                       MutexLock l(&log.mu);
                       log.updates.push_back(u);
                       log.cv.SignalAll();
                     },
                     [&](absl::Status s) {
                       {
                         MutexLock l(&log.mu);
                         log.end = s;
                       }
                       ended.Notify();
                     })
                 .value();
  }));
  ASSERT_TRUE(log.WaitFor(
      [](const std::vector<EtcdWatchUpdate>& us) { return !us.empty(); }));
  ASSERT_TRUE(etcd_->Stop().ok());
  ASSERT_TRUE(ended.WaitForNotificationWithTimeout(kWait));
  MutexLock l(&log.mu);
  EXPECT_EQ(log.end->code(), absl::StatusCode::kUnavailable) << *log.end;
}

TEST_F(EtcdClientTest, LeaseGrantKeepAliveRevoke) {
  auto lease = Await<absl::StatusOr<EtcdLease>>(
      [&](auto cb) { client_->LeaseGrant(5, cb); });
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_NE(lease->id, 0);
  EXPECT_EQ(lease->ttl_seconds, 5);
  auto ttl = Await<absl::StatusOr<int64_t>>(
      [&](auto cb) { client_->LeaseKeepAlive(lease->id, cb); });
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, 5);
  auto put = Await<absl::StatusOr<int64_t>>(
      [&](auto cb) { client_->Put("l/k", "v", lease->id, cb); });
  ASSERT_TRUE(put.ok()) << put.status();
  int64_t key_lease = 0;
  auto got = etcd_->Get("l/k", &key_lease);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(key_lease, lease->id);

  auto revoked = Await<absl::Status>([&](auto cb) {
    client_->LeaseRevoke(lease->id, absl::Seconds(2), cb);
  });
  ASSERT_TRUE(revoked.ok()) << revoked;
  got = etcd_->Get("l/k");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  // A gone lease: keep-alive says TTL 0, a second revoke NOT_FOUND.
  ttl = Await<absl::StatusOr<int64_t>>(
      [&](auto cb) { client_->LeaseKeepAlive(lease->id, cb); });
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, 0);
  revoked = Await<absl::Status>([&](auto cb) {
    client_->LeaseRevoke(lease->id, absl::Seconds(2), cb);
  });
  EXPECT_EQ(revoked.code(), absl::StatusCode::kNotFound) << revoked;
}

TEST_F(EtcdClientTest, KeyOfAnExpiredLeaseDisappears) {
  auto lease = Await<absl::StatusOr<EtcdLease>>(
      [&](auto cb) { client_->LeaseGrant(2, cb); });
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto put = Await<absl::StatusOr<int64_t>>(
      [&](auto cb) { client_->Put("e/k", "v", lease->id, cb); });
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE(etcd_->WaitForKey("e/k", /*present=*/false, kWait));
  auto ttl = Await<absl::StatusOr<int64_t>>(
      [&](auto cb) { client_->LeaseKeepAlive(lease->id, cb); });
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, 0);
}

TEST_F(EtcdClientTest, TriesTheNextMemberWhenOneIsDown) {
  absl::StatusOr<int> dead = bevrpc::testing::FreeLoopbackPort();
  ASSERT_TRUE(dead.ok());
  ASSERT_TRUE(lt_.RunOnLoop([&] { client_.reset(); }));
  client_ = MakeClient(
      {HostPort{"127.0.0.1", static_cast<uint16_t>(*dead)},
       HostPort{"127.0.0.1", static_cast<uint16_t>(etcd_->client_port())}});
  ASSERT_TRUE(etcd_->Put("m/k", "v").ok());
  absl::StatusOr<EtcdRange> r = Range("m/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kvs.size(), 1u);
  ASSERT_TRUE(lt_.RunOnLoop(
      [&] { EXPECT_EQ(client_->current_member(), etcd_->endpoint()); }));

  // Every member down: UNAVAILABLE.
  ASSERT_TRUE(etcd_->Stop().ok());
  r = Range("m/");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

}  // namespace
}  // namespace bevrpc::naming
