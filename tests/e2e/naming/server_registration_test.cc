// ServerOptions::register_target with a real etcd, in one process: the
// server registers once it listens, a Channel over the etcd:// target
// reaches it, and Shutdown() removes the key before it drains (while a
// call is still running).
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "services/echo/echo.pb.h"
#include "tests/testing/etcd_process.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

class ServerRegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
  }
  bool WaitForKey(const std::string& key, bool want_present) {
    return etcd_->WaitForKey(key, want_present, absl::Seconds(30));
  }
  std::string Target() {
    return absl::StrCat("etcd://", etcd_->endpoint(), "/svc/echo");
  }
  std::unique_ptr<testing::EtcdProcess> etcd_;
};

TEST_F(ServerRegistrationTest, RegistersAndRevokesBeforeDraining) {
  Notification started, release;
  ServerOptions options;
  options.register_target = Target();
  options.registration.ttl = absl::Seconds(5);
  options.registration.id = "echo-0";
  Server server(options);
  ASSERT_TRUE(server
                  .RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                      "test.Slow/Hold",
                      [&](ServerContext&, const EchoRequest& req,
                          EchoResponse* resp) {
                        started.Notify();
                        release.WaitForNotificationWithTimeout(absl::Minutes(1));
                        resp->set_message(req.message());
                        return absl::OkStatus();
                      }))
                  .ok());
  ASSERT_TRUE(server.Start().ok());
  const std::string address = absl::StrCat("127.0.0.1:", server.port());
  const std::string key = "svc/echo/" + address;
  ASSERT_TRUE(WaitForKey(key, true));
  auto value = etcd_->Get(key);
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_NE((**value).find("\"id\":\"echo-0\""), std::string::npos) << **value;

  auto channel = Channel::Create(Target());
  ASSERT_TRUE(channel.ok()) << channel.status();
  EchoRequest req;
  req.set_message("held");
  EchoResponse resp;
  Notification done;
  absl::Status status;
  CallOptions call;
  call.timeout = absl::Seconds(60);
  (*channel)->CallAsync("test.Slow/Hold", req, &resp, call,
                        [&](absl::Status s) {
                          status = s;
                          done.Notify();
                        });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // Shutdown deregisters first, then drains: the key goes while the call
  // is still held.
  std::thread stopper([&] { server.Shutdown(absl::Seconds(60)); });
  EXPECT_TRUE(WaitForKey(key, false));
  EXPECT_FALSE(done.HasBeenNotified());
  release.Notify();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(resp.message(), "held");
  stopper.join();
}

TEST_F(ServerRegistrationTest, WildcardListenNeedsAdvertise) {
  ServerOptions options;
  options.listen_address = "0.0.0.0:0";
  options.register_target = Target();
  Server server(options);
  absl::Status s = server.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("advertise"), std::string::npos) << s;

  ServerOptions with_advertise = options;
  with_advertise.advertise = "10.9.8.7:6543";
  Server advertised(with_advertise);
  ASSERT_TRUE(advertised.Start().ok());
  EXPECT_TRUE(WaitForKey("svc/echo/10.9.8.7:6543", true));
  advertised.Shutdown(absl::ZeroDuration());
  EXPECT_TRUE(WaitForKey("svc/echo/10.9.8.7:6543", false));
}

TEST_F(ServerRegistrationTest, BadTargetFailsStart) {
  ServerOptions options;
  options.register_target = "list:///127.0.0.1:1";
  Server server(options);
  absl::Status s = server.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

}  // namespace
}  // namespace bevrpc
