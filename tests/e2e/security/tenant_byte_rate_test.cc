// Per-tenant byte rates (TenantLimit::byte_rate) end to end over loopback
// TCP: a tenant with a small write rate receives its stream at about that
// rate while another tenant's stream, at the same time on the same server,
// is not slowed down; the bytes show in bevrpc_tenant_bytes_total; a
// connection stays in the group of the first byte-limited tenant that
// called on it; and joining a tenant's group takes a connection out of
// the server-wide group (ServerOptions::server_rate_limit).
//
// Rates are measured by the client, from opening the stream to its last
// message; there are no sleeps, and the only time bound is the calls'
// generous deadline.
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/metrics/metrics.h"
#include "rpc/server.h"
#include "rpc/tenant/tenant_limits.h"
#include "services/echo/echo.bevrpc.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;
using echo::ExpandRequest;

constexpr uint64_t kKiB = 1024;
constexpr int kMessageBytes = 64 * kKiB;

struct Transfer {
  absl::Status status;
  uint64_t bytes = 0;
  absl::Duration took;
  // Bytes per second, as the client saw them.
  double rate() const { return bytes / absl::ToDoubleSeconds(took); }
};

// Streams `messages` messages of 64 KiB from Echo/Expand as `tenant`.
Transfer Expand(Channel& channel, const std::string& tenant, int messages) {
  CallOptions call;
  call.metadata["x-tenant"] = tenant;
  call.timeout = absl::Seconds(120);
  ExpandRequest request;
  request.set_count(messages);
  request.set_size(kMessageBytes);
  Transfer t;
  const absl::Time start = absl::Now();
  auto stream = ClientStream<ExpandRequest, EchoResponse>::Open(
      channel, echo::Echo::kExpandMethod, MethodKind::kServerStreaming,
      &request, call);
  EchoResponse message;
  while (stream->Read(&message)) t.bytes += message.message().size();
  t.status = stream->Finish();
  t.took = absl::Now() - start;
  return t;
}

std::string Describe(const std::string& tenant, const Transfer& t) {
  return absl::StrCat("tenant ", tenant, ": ", t.bytes, " bytes in ",
                      absl::FormatDuration(t.took), " = ",
                      static_cast<int64_t>(t.rate() / kKiB), " KiB/s");
}

// The value of one series on the registry's page, or -1 if absent.
double Series(metrics::MetricsRegistry& registry, const std::string& series) {
  std::string page;
  registry.RenderPrometheus(&page);
  const std::string prefix = series + " ";
  size_t at = page.find(prefix);
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + prefix.size()));
}

class TenantByteRateTest : public ::testing::Test {
 protected:
  // A server whose tenant is the x-tenant header, with `limits`.
  void StartServer(tenant::TenantLimitsOptions limits,
                   ServerOptions options = ServerOptions()) {
    limits.key_header = "x-tenant";
    limits.metrics_registry = &registry_;
    auto limiter = tenant::TenantLimiter::Create(std::move(limits));
    ASSERT_TRUE(limiter.ok()) << limiter.status();
    options.listen_address = "127.0.0.1:0";
    options.interceptors = {*limiter};
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(server_->RegisterService(&echo_).ok());
    ASSERT_TRUE(server_->Start().ok());
  }
  // A channel of its own: one connection of its own.
  std::unique_ptr<Channel> NewChannel() {
    auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server_->port()));
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *std::move(channel) : nullptr;
  }

  // Declared first: outlives the limiter, which the server holds.
  metrics::MetricsRegistry registry_;
  echo::EchoService echo_;
  std::unique_ptr<Server> server_;
};

TEST_F(TenantByteRateTest, OneTenantIsThrottledTheOtherIsNot) {
  constexpr uint64_t kLimit = 256 * kKiB;
  tenant::TenantLimitsOptions limits;
  limits.tenants["a"].byte_rate.write_bytes_per_sec = kLimit;
  limits.tenants["b"].max_concurrent_calls = 100;  // No byte rate.
  StartServer(limits);
  std::unique_ptr<Channel> channel_a = NewChannel();
  std::unique_ptr<Channel> channel_b = NewChannel();
  ASSERT_NE(channel_a, nullptr);
  ASSERT_NE(channel_b, nullptr);

  // 1.5 MiB each, at the same time: a needs about 5 s at its rate.
  constexpr int kMessages = 24;
  Transfer a;
  std::thread a_thread([&] { a = Expand(*channel_a, "a", kMessages); });
  Transfer b = Expand(*channel_b, "b", kMessages);
  a_thread.join();
  std::cout << Describe("a", a) << " (limit " << kLimit / kKiB << " KiB/s)\n"
            << Describe("b", b) << " (no limit)\n";
  ASSERT_TRUE(a.status.ok()) << a.status;
  ASSERT_TRUE(b.status.ok()) << b.status;
  ASSERT_EQ(a.bytes, kMessages * uint64_t{kMessageBytes});
  ASSERT_EQ(b.bytes, kMessages * uint64_t{kMessageBytes});
  // a is held to about its rate: the call starts once its connection is in
  // a's group, whose bucket starts with a tenth of a second's worth (a
  // group idle for a second holds a second's worth: that would be 1.2x)...
  EXPECT_LT(a.rate(), 1.5 * kLimit) << Describe("a", a);
  // ...while b, at the same time, is not.
  EXPECT_GT(b.rate(), 4.0 * kLimit) << Describe("b", b);

  // The group's bytes: all of a's stream (and the frames around it) went
  // through it; b has none.
  const double written = Series(
      registry_, "bevrpc_tenant_bytes_total{tenant=\"a\",direction=\"written\"}");
  EXPECT_GE(written, a.bytes);
  EXPECT_LE(written, a.bytes + 16 * kKiB);
  EXPECT_EQ(Series(registry_,
                   "bevrpc_tenant_bytes_total{tenant=\"b\",direction=\"written\"}"),
            -1);
}

TEST_F(TenantByteRateTest, AConnectionStaysInTheFirstTenantsGroup) {
  constexpr uint64_t kLimit = 256 * kKiB;
  tenant::TenantLimitsOptions limits;
  limits.tenants["a"].byte_rate.write_bytes_per_sec = kLimit;
  StartServer(limits);
  std::unique_ptr<Channel> channel = NewChannel();
  ASSERT_NE(channel, nullptr);
  echo::Echo::Stub stub(channel.get());
  // Tenant a calls first: the connection joins a's group...
  CallOptions as_a;
  as_a.metadata["x-tenant"] = "a";
  EchoRequest hello;
  hello.set_message("hello");
  ASSERT_TRUE(stub.Echo(hello, as_a).ok());
  // ...and tenant b's stream on the same connection is carried in it.
  Transfer b = Expand(*channel, "b", 16);
  std::cout << Describe("b", b) << " (on a's connection, a's limit "
            << kLimit / kKiB << " KiB/s)\n";
  ASSERT_TRUE(b.status.ok()) << b.status;
  ASSERT_EQ(b.bytes, 16 * uint64_t{kMessageBytes});
  EXPECT_LT(b.rate(), 1.5 * kLimit) << Describe("b", b);
  EXPECT_GE(Series(registry_,
                   "bevrpc_tenant_bytes_total{tenant=\"a\",direction=\"written\"}"),
            static_cast<double>(b.bytes));
}

TEST_F(TenantByteRateTest, ATenantsConnectionLeavesTheServerWideGroup) {
  constexpr uint64_t kServerLimit = 128 * kKiB;
  ServerOptions options;
  options.server_rate_limit.write_bytes_per_sec = kServerLimit;
  tenant::TenantLimitsOptions limits;
  // Far above what loopback needs here: only the move out of the server's
  // group shows.
  limits.tenants["a"].byte_rate.write_bytes_per_sec = 512 * 1024 * kKiB;
  StartServer(limits, options);
  std::unique_ptr<Channel> channel_a = NewChannel();
  std::unique_ptr<Channel> channel_b = NewChannel();
  ASSERT_NE(channel_a, nullptr);
  ASSERT_NE(channel_b, nullptr);

  Transfer a = Expand(*channel_a, "a", 16);
  Transfer b = Expand(*channel_b, "b", 8);
  std::cout << Describe("a", a) << " (own group)\n"
            << Describe("b", b) << " (server-wide limit "
            << kServerLimit / kKiB << " KiB/s)\n";
  ASSERT_TRUE(a.status.ok()) << a.status;
  ASSERT_TRUE(b.status.ok()) << b.status;
  // a is not held to the server-wide limit any more...
  EXPECT_GT(a.rate(), 4.0 * kServerLimit) << Describe("a", a);
  // ...which b, with no byte rate of its own, still is.
  EXPECT_LT(b.rate(), 2.0 * kServerLimit) << Describe("b", b);
}

}  // namespace
}  // namespace bevrpc
