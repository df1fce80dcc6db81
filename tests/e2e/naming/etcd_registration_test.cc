// echo_server --register=etcd://... against a real etcd: registration,
// deregistration before the drain on SIGTERM, expiry after kill -9, and an
// EtcdResolver following it all.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/naming/etcd_registry.h"
#include "rpc/naming/etcd_resolver.h"
#include "tests/testing/etcd_process.h"
#include "tests/testing/server_process.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);
constexpr char kPrefix[] = "bevrpc/services/echo/";

class EtcdRegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
  }

  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> StartEcho() {
    return testing::ServerProcess::Start(
        "services/echo/echo_server",
        {"--port=0",
         absl::StrCat("--register=etcd://", etcd_->endpoint(),
                      "/bevrpc/services/echo"),
         "--register_ttl=3s"});
  }

  bool WaitForKey(const std::string& key, bool present,
                  absl::Duration wait = kWait) {
    return etcd_->WaitForKey(key, present, wait);
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
};

TEST_F(EtcdRegistrationTest, SigtermRevokesBeforeDrainKillLeavesItToTheTtl) {
  // A resolver watching the prefix, as a client would.
  transport::testing::LoopThread lt;
  Mutex mu;
  CondVar cv;
  std::vector<std::string> lists;  // addresses of each list, comma-joined
  std::unique_ptr<naming::Resolver> resolver;
  auto target = naming::ParseTarget(
      absl::StrCat("etcd://", etcd_->endpoint(), "/bevrpc/services/echo"));
  ASSERT_TRUE(target.ok());
  ASSERT_TRUE(lt.RunOnLoop([&] {
    resolver = naming::NewEtcdResolver(*target, lt.loop(), {});
    resolver->Start([&](absl::StatusOr<naming::EndpointList> r) {
      std::string joined = r.ok() ? "" : "error";
      if (r.ok()) {
        for (const auto& e : *r) absl::StrAppend(&joined, e.address, ",");
      }
      MutexLock l(&mu);
      lists.push_back(joined);
      cv.SignalAll();
    });
  }));
  auto wait_list = [&](const std::string& want) {
    absl::Time deadline = absl::Now() + kWait;
    MutexLock l(&mu);
    while (lists.empty() || lists.back() != want) {
      if (absl::Now() >= deadline) return false;
      cv.WaitWithTimeout(&mu, deadline - absl::Now());
    }
    return true;
  };
  ASSERT_TRUE(wait_list(""));

  auto server = StartEcho();
  ASSERT_TRUE(server.ok()) << server.status();
  std::string addr = absl::StrCat("127.0.0.1:", (*server)->port());
  std::string key = absl::StrCat(kPrefix, addr);
  ASSERT_TRUE(WaitForKey(key, true));
  int64_t lease = 0;
  auto value = etcd_->Get(key, &lease);
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_NE(lease, 0);
  auto info = naming::ParseRegistryValue(**value);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->address, addr);
  ASSERT_TRUE(wait_list(addr + ","));

  // SIGTERM: the lease is revoked before the server drains and exits, so
  // by the time it has exited the key is gone (no TTL wait).
  ASSERT_TRUE((*server)->Stop().ok());
  auto after = etcd_->Get(key);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value()) << "key outlived a graceful exit";
  ASSERT_TRUE(wait_list(""));

  // kill -9: nothing revokes; the key stays until its 3 s lease expires.
  auto crashing = StartEcho();
  ASSERT_TRUE(crashing.ok()) << crashing.status();
  std::string key2 =
      absl::StrCat(kPrefix, "127.0.0.1:", (*crashing)->port());
  ASSERT_TRUE(WaitForKey(key2, true));
  ASSERT_EQ(kill((*crashing)->pid(), SIGKILL), 0);
  absl::Time killed = absl::Now();
  // Reaped by IsRunning(); SIGKILL takes effect at once, bounded anyway.
  while ((*crashing)->IsRunning() && absl::Now() < killed + kWait) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_FALSE((*crashing)->IsRunning());
  auto still = etcd_->Get(key2);
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(still->has_value()) << "key vanished at once after kill -9";
  ASSERT_TRUE(WaitForKey(key2, false));
  // Expired by its TTL (3 s, less the time since the last keep-alive, at
  // most TTL/3 = 1 s earlier).
  EXPECT_GE(absl::Now() - killed, absl::Seconds(1));
  ASSERT_TRUE(wait_list(""));
  ASSERT_TRUE(lt.RunOnLoop([&] { resolver.reset(); }));
}

}  // namespace
}  // namespace bevrpc
