// Server-side byte-rate limits (ServerOptions::per_connection_rate_limit and
// server_rate_limit) slow real calls down without failing them.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"

namespace bevrpc {
namespace {

constexpr int kKiB = 1024;

// Sends one echo of `bytes` and returns how long it took.
absl::Duration TimeEcho(const ServerOptions& options, int bytes) {
  Server server(options);
  EXPECT_TRUE(echo::RegisterEchoService(server).ok());
  EXPECT_TRUE(server.Start().ok());
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server.port()));
  EXPECT_TRUE(channel.ok());
  echo::EchoRequest req;
  req.set_message(std::string(bytes, 'r'));
  echo::EchoResponse resp;
  CallOptions call;
  call.timeout = absl::Seconds(20);
  absl::Time start = absl::Now();
  absl::Status s = (*channel)->Call(echo::kEchoMethod, req, &resp, call);
  absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(resp.message().size(), static_cast<size_t>(bytes));
  return took;
}

TEST(RateLimitTest, PerConnectionWriteLimitSlowsResponses) {
  ServerOptions options;
  // 64 KiB/s with a one-second burst: 192 KiB of response needs >= 2 s.
  options.per_connection_rate_limit.write_bytes_per_sec = 64 * kKiB;
  absl::Duration took = TimeEcho(options, 192 * kKiB);
  EXPECT_GE(took, absl::Milliseconds(1500)) << took;
}

TEST(RateLimitTest, ServerWideReadLimitSlowsRequests) {
  ServerOptions options;
  options.server_rate_limit.read_bytes_per_sec = 64 * kKiB;
  absl::Duration took = TimeEcho(options, 192 * kKiB);
  EXPECT_GE(took, absl::Milliseconds(1500)) << took;
}

TEST(RateLimitTest, NoLimitIsFast) {
  absl::Duration took = TimeEcho(ServerOptions(), 192 * kKiB);
  EXPECT_LT(took, absl::Seconds(1)) << took;
}

}  // namespace
}  // namespace bevrpc
