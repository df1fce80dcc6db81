// Registrar against a real etcd (tests/testing/etcd_process.h).
#include "rpc/naming/registrar.h"

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/naming/etcd_registry.h"
#include "tests/testing/etcd_process.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::naming {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

class RegistrarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = bevrpc::testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
  }
  void TearDown() override {
    ASSERT_TRUE(lt_.RunOnLoop([&] { registrar_.reset(); }));
  }

  std::string Target() {
    return absl::StrCat("etcd://", etcd_->endpoint(), "/svc/echo");
  }

  void StartRegistrar(RegistrarOptions options) {
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      auto r = Registrar::Create(lt_.loop(), Target(), "127.0.0.1:4567",
                                 options);
      ASSERT_TRUE(r.ok()) << r.status();
      registrar_ = *std::move(r);
      registrar_->Start();
    }));
  }

  // Until the key's presence is `present` and `pred(lease)` holds.
  template <typename Pred>
  bool WaitForKey(bool present, Pred pred) {
    return etcd_->WaitForKey(kKey, present, kWait, pred);
  }
  bool WaitForKey(bool present) {
    return etcd_->WaitForKey(kKey, present, kWait);
  }

  int64_t RegistrarLease() {
    int64_t lease = 0;
    EXPECT_TRUE(lt_.RunOnLoop([&] { lease = registrar_->lease_id(); }));
    return lease;
  }

  static constexpr char kKey[] = "svc/echo/127.0.0.1:4567";
  transport::testing::LoopThread lt_;
  std::unique_ptr<bevrpc::testing::EtcdProcess> etcd_;
  std::unique_ptr<Registrar> registrar_;
};

TEST_F(RegistrarTest, RejectsBadArguments) {
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    auto r = Registrar::Create(lt_.loop(), "dns:///x:1", "127.0.0.1:1");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(r.status().message(), "etcd://HOST:PORT"))
        << r.status();
    r = Registrar::Create(lt_.loop(), "etcd://127.0.0.1:2379", "127.0.0.1:1");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    r = Registrar::Create(lt_.loop(), Target(), "no-port");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    RegistrarOptions short_ttl;
    short_ttl.ttl = absl::Milliseconds(500);
    r = Registrar::Create(lt_.loop(), Target(), "127.0.0.1:1", short_ttl);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }));
}

TEST_F(RegistrarTest, KeyLivesWithItsLeaseUntilRevoked) {
  RegistrarOptions options;
  options.ttl = absl::Seconds(2);
  options.weight = 3;
  options.zone = "z1";
  options.id = "echo-1";
  options.version = "1.2";
  StartRegistrar(options);
  ASSERT_TRUE(WaitForKey(true, [](int64_t lease) { return lease != 0; }));
  int64_t lease = 0;
  auto value = etcd_->Get(kKey, &lease);
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(lease, RegistrarLease());
  absl::StatusOr<EndpointInfo> info = ParseRegistryValue(**value);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->address, "127.0.0.1:4567");
  EXPECT_EQ(info->weight, 3u);
  EXPECT_EQ(info->zone, "z1");
  EXPECT_EQ(info->id, "echo-1");
  EXPECT_EQ(info->version, "1.2");

  // Three TTLs: the key must be there at every look, on the same lease.
  absl::Time until = absl::Now() + absl::Seconds(6);
  while (absl::Now() < until) {
    int64_t now_lease = 0;
    auto got = etcd_->Get(kKey, &now_lease);
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(got->has_value()) << "key vanished";
    ASSERT_EQ(now_lease, lease);
    absl::SleepFor(absl::Milliseconds(200));
  }

  Notification revoked;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    registrar_->Revoke([&] { revoked.Notify(); });
  }));
  ASSERT_TRUE(revoked.WaitForNotificationWithTimeout(kWait));
  // Gone at once, not after the TTL.
  auto got = etcd_->Get(kKey);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  absl::StatusOr<int64_t> ttl = etcd_->LeaseTtl(lease);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(*ttl, -1);
}

TEST_F(RegistrarTest, RegistersAgainAfterItsLeaseIsRevokedBehindItsBack) {
  RegistrarOptions options;
  options.ttl = absl::Seconds(3);
  StartRegistrar(options);
  ASSERT_TRUE(WaitForKey(true, [](int64_t lease) { return lease != 0; }));
  int64_t first = RegistrarLease();
  ASSERT_TRUE(etcd_->RevokeLease(first).ok());
  auto got = etcd_->Get(kKey);
  ASSERT_TRUE(got.ok());
  ASSERT_FALSE(got->has_value());
  // The next keep-alive (within ttl/3) finds the lease gone.
  ASSERT_TRUE(WaitForKey(
      true, [&](int64_t lease) { return lease != 0 && lease != first; }));
  EXPECT_NE(RegistrarLease(), first);
}

TEST_F(RegistrarTest, KeepsTryingUntilEtcdIsUp) {
  ASSERT_TRUE(etcd_->Stop().ok());
  RegistrarOptions options;
  options.ttl = absl::Seconds(2);
  options.max_backoff = absl::Milliseconds(500);
  StartRegistrar(options);
  ASSERT_TRUE(etcd_->Restart().ok());
  ASSERT_TRUE(WaitForKey(true));
}

TEST_F(RegistrarTest, RevokeWithEtcdDownIsBounded) {
  RegistrarOptions options;
  options.ttl = absl::Seconds(2);
  StartRegistrar(options);
  ASSERT_TRUE(WaitForKey(true));
  ASSERT_TRUE(etcd_->Stop().ok());
  Notification revoked;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    registrar_->Revoke([&] { revoked.Notify(); });
  }));
  // revoke_timeout is 1 s; kWait only guards against a hang.
  EXPECT_TRUE(revoked.WaitForNotificationWithTimeout(kWait));
}

}  // namespace
}  // namespace bevrpc::naming
