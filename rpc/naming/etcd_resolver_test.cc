// EtcdResolver against a real etcd (tests/testing/etcd_process.h).
#include "rpc/naming/etcd_resolver.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "rpc/naming/etcd_registry.h"
#include "tests/testing/etcd_process.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::naming {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

std::string Value(const std::string& addr, int weight = 0,
                  const std::string& zone = "") {
  std::string v = absl::StrCat(R"({"addr":")", addr, "\"");
  if (weight != 0) absl::StrAppend(&v, R"(,"weight":)", weight);
  if (!zone.empty()) absl::StrAppend(&v, R"(,"zone":")", zone, "\"");
  return v + "}";
}

std::string Addresses(const EndpointList& list) {
  return absl::StrJoin(list, ",", [](std::string* out, const EndpointInfo& e) {
    out->append(e.address);
  });
}

// Everything a resolver reported, in order.
struct Reports {
  Mutex mu;
  CondVar cv;
  std::vector<absl::StatusOr<EndpointList>> all ABSL_GUARDED_BY(mu);

  void Add(absl::StatusOr<EndpointList> r) {
    MutexLock l(&mu);
    all.push_back(std::move(r));
    cv.SignalAll();
  }
  // Waits for a reported list whose addresses are `want` (comma-joined);
  // returns it (or an error after kWait).
  absl::StatusOr<EndpointList> WaitForList(const std::string& want,
                                           absl::Duration wait = kWait) {
    absl::Time deadline = absl::Now() + wait;
    MutexLock l(&mu);
    while (true) {
      for (const auto& r : all) {
        if (r.ok() && Addresses(*r) == want) return *r;
      }
      if (absl::Now() >= deadline) break;
      cv.WaitWithTimeout(&mu, deadline - absl::Now());
    }
    std::string seen;
    for (const auto& r : all) {
      absl::StrAppend(&seen, "\n  ",
                      r.ok() ? "[" + Addresses(*r) + "]" : r.status().ToString());
    }
    return absl::DeadlineExceededError(
        absl::StrCat("no list [", want, "]; reports:", seen));
  }
  size_t count() {
    MutexLock l(&mu);
    return all.size();
  }
  // Waits until more than `n` reports exist; false after `wait`.
  bool WaitForMoreThan(size_t n, absl::Duration wait) {
    absl::Time deadline = absl::Now() + wait;
    MutexLock l(&mu);
    while (all.size() <= n) {
      if (absl::Now() >= deadline) return false;
      cv.WaitWithTimeout(&mu, deadline - absl::Now());
    }
    return true;
  }
};

class EtcdResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = bevrpc::testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
  }
  void TearDown() override {
    ASSERT_TRUE(lt_.RunOnLoop([&] { resolver_.reset(); }));
  }

  std::string Target(const std::string& prefix) {
    return absl::StrCat("etcd://", etcd_->endpoint(), "/", prefix);
  }

  void StartResolver(const std::string& target, ResolverOptions options = {},
                     EtcdClientOptions client_options = {}) {
    absl::StatusOr<naming::Target> t = ParseTarget(target);
    ASSERT_TRUE(t.ok()) << t.status();
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      resolver_ = NewEtcdResolver(*t, lt_.loop(), options, client_options);
      resolver_->Start(
          [this](absl::StatusOr<EndpointList> r) { reports_.Add(r); });
    }));
  }

  void Put(const std::string& key, const std::string& value) {
    ASSERT_TRUE(etcd_->Put(key, value).ok());
  }

  transport::testing::LoopThread lt_;
  std::unique_ptr<bevrpc::testing::EtcdProcess> etcd_;
  std::unique_ptr<Resolver> resolver_;
  Reports reports_;
};

TEST_F(EtcdResolverTest, InitialListThenWatchedChanges) {
  Put("svc/echo/10.0.0.2:80", Value("10.0.0.2:80", 3, "b"));
  Put("svc/echo/10.0.0.1:80", Value("10.0.0.1:80"));
  StartResolver(Target("svc/echo"));
  absl::StatusOr<EndpointList> list =
      reports_.WaitForList("10.0.0.1:80,10.0.0.2:80");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)[0].weight, 1u);
  EXPECT_EQ((*list)[1].weight, 3u);
  EXPECT_EQ((*list)[1].zone, "b");
  {
    MutexLock l(&reports_.mu);
    EXPECT_EQ(reports_.all.size(), 1u);  // one list, not one per key
  }

  Put("svc/echo/10.0.0.3:80", Value("10.0.0.3:80"));
  ASSERT_TRUE(
      reports_.WaitForList("10.0.0.1:80,10.0.0.2:80,10.0.0.3:80").ok());
  ASSERT_TRUE(etcd_->Delete("svc/echo/10.0.0.1:80").ok());
  ASSERT_TRUE(reports_.WaitForList("10.0.0.2:80,10.0.0.3:80").ok());
  // A changed value is a changed list.
  Put("svc/echo/10.0.0.3:80", Value("10.0.0.3:80", 7));
  list = reports_.WaitForList("10.0.0.2:80,10.0.0.3:80");
  absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    MutexLock l(&reports_.mu);
    const auto& last = reports_.all.back();
    if (last.ok() && last->size() == 2 && (*last)[1].weight == 7) break;
    reports_.cv.WaitWithTimeout(&reports_.mu, absl::Milliseconds(100));
  }
  MutexLock l(&reports_.mu);
  ASSERT_TRUE(reports_.all.back().ok());
  EXPECT_EQ((*reports_.all.back())[1].weight, 7u);
}

TEST_F(EtcdResolverTest, PrefixDoesNotMatchLongerNames) {
  Put("a/echo/10.0.0.1:80", Value("10.0.0.1:80"));
  Put("a/echo2/10.0.0.9:80", Value("10.0.0.9:80"));
  Put("a/echo", Value("10.0.0.8:80"));
  StartResolver(Target("a/echo"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80").ok());
  Put("a/echo2/10.0.0.10:80", Value("10.0.0.10:80"));
  Put("a/echo/10.0.0.2:80", Value("10.0.0.2:80"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80,10.0.0.2:80").ok());
  MutexLock l(&reports_.mu);
  for (const auto& r : reports_.all) {
    ASSERT_TRUE(r.ok());
    for (const EndpointInfo& e : *r) {
      EXPECT_NE(e.address, "10.0.0.9:80");
      EXPECT_NE(e.address, "10.0.0.10:80");
      EXPECT_NE(e.address, "10.0.0.8:80");
    }
  }
}

TEST_F(EtcdResolverTest, BadValuesAreSkipped) {
  Put("s/10.0.0.1:80", Value("10.0.0.1:80"));
  Put("s/garbage", "not json at all");
  Put("s/noaddr", R"({"weight":3})");
  Put("s/badaddr", R"({"addr":"no-port"})");
  Put("s/dup", Value("10.0.0.1:80"));  // same address: one entry
  StartResolver(Target("s"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80").ok());
  // A watched bad value is skipped too; a good one after it still counts.
  Put("s/later-bad", "{");
  Put("s/10.0.0.2:80", Value("10.0.0.2:80"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80,10.0.0.2:80").ok());
}

TEST_F(EtcdResolverTest, ErrorWhenEtcdWasNeverReachable) {
  absl::StatusOr<int> dead = bevrpc::testing::FreeLoopbackPort();
  ASSERT_TRUE(dead.ok());
  StartResolver(absl::StrCat("etcd://127.0.0.1:", *dead, "/x"));
  ASSERT_TRUE(reports_.WaitForMoreThan(0, kWait));
  MutexLock l(&reports_.mu);
  EXPECT_EQ(reports_.all[0].status().code(), absl::StatusCode::kUnavailable)
      << reports_.all[0].status();
}

TEST_F(EtcdResolverTest, UsesTheNextMemberWhenTheFirstIsDown) {
  absl::StatusOr<int> dead = bevrpc::testing::FreeLoopbackPort();
  ASSERT_TRUE(dead.ok());
  Put("m/10.0.0.1:80", Value("10.0.0.1:80"));
  StartResolver(absl::StrCat("etcd://127.0.0.1:", *dead, ",",
                             etcd_->endpoint(), "/m"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80").ok());
  // The watch went to the member that answered, too.
  Put("m/10.0.0.2:80", Value("10.0.0.2:80"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80,10.0.0.2:80").ok());
  MutexLock l(&reports_.mu);
  for (const auto& r : reports_.all) EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(EtcdResolverTest, KeepsListAndCatchesUpAcrossEtcdRestart) {
  Put("r/10.0.0.1:80", Value("10.0.0.1:80"));
  Put("r/10.0.0.2:80", Value("10.0.0.2:80"));
  ResolverOptions options;
  // Long enough that the changes below are made before it reconnects.
  options.etcd_initial_backoff = absl::Seconds(2);
  options.etcd_max_backoff = absl::Seconds(2);
  StartResolver(Target("r"), options);
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80,10.0.0.2:80").ok());
  size_t before = reports_.count();

  ASSERT_TRUE(etcd_->Stop().ok());
  ASSERT_TRUE(etcd_->Restart().ok());
  ASSERT_TRUE(etcd_->Delete("r/10.0.0.1:80").ok());
  Put("r/10.0.0.3:80", Value("10.0.0.3:80"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.2:80,10.0.0.3:80").ok());
  // No error was reported while etcd was down: the old list stood.
  MutexLock l(&reports_.mu);
  for (size_t i = before; i < reports_.all.size(); ++i) {
    EXPECT_TRUE(reports_.all[i].ok()) << reports_.all[i].status();
  }
}

TEST_F(EtcdResolverTest, RelistsWhenResumeRevisionWasCompacted) {
  Put("k/10.0.0.1:80", Value("10.0.0.1:80"));
  ResolverOptions options;
  // While the resolver waits to reconnect, its resume revision is
  // compacted away.
  options.etcd_initial_backoff = absl::Seconds(3);
  options.etcd_max_backoff = absl::Seconds(3);
  StartResolver(Target("k"), options);
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80").ok());

  ASSERT_TRUE(etcd_->Stop().ok());
  ASSERT_TRUE(etcd_->Restart().ok());
  ASSERT_TRUE(etcd_->Delete("k/10.0.0.1:80").ok());
  Put("k/10.0.0.2:80", Value("10.0.0.2:80"));
  for (int i = 0; i < 10; ++i) Put("other/filler", absl::StrCat(i));
  absl::StatusOr<int64_t> rev = etcd_->Revision();
  ASSERT_TRUE(rev.ok());
  ASSERT_TRUE(etcd_->Compact(*rev).ok());
  ASSERT_TRUE(reports_.WaitForList("10.0.0.2:80").ok());
  // And it watches again after the re-list.
  Put("k/10.0.0.3:80", Value("10.0.0.3:80"));
  ASSERT_TRUE(reports_.WaitForList("10.0.0.2:80,10.0.0.3:80").ok());
}

TEST_F(EtcdResolverTest, QuietWatchOutlivesShortIdleTimeout) {
  Put("q/10.0.0.1:80", Value("10.0.0.1:80"));
  ResolverOptions options;
  // Were the watch to die of the idle timeout, the reconnect would come
  // long after the change below is expected.
  options.etcd_initial_backoff = absl::Seconds(60);
  options.etcd_max_backoff = absl::Seconds(60);
  EtcdClientOptions client_options;
  client_options.http_io_timeout = absl::Milliseconds(300);
  StartResolver(Target("q"), options, client_options);
  ASSERT_TRUE(reports_.WaitForList("10.0.0.1:80").ok());
  // Quiet for many idle timeouts: nothing may be reported meanwhile.
  EXPECT_FALSE(reports_.WaitForMoreThan(1, absl::Seconds(2)));
  Put("q/10.0.0.2:80", Value("10.0.0.2:80"));
  EXPECT_TRUE(
      reports_.WaitForList("10.0.0.1:80,10.0.0.2:80", absl::Seconds(10)).ok());
}

}  // namespace
}  // namespace bevrpc::naming
