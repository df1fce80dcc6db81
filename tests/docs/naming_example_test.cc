// The code docs/naming.md shows (its "// [START ...]" regions), run for
// real: an endpoints file in the documented format, and a ring_hash channel
// over a file:/// target naming two in-process echo servers.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/naming/file_resolver.h"
#include "rpc/server.h"
#include "services/echo/echo.bevrpc.h"
#include "services/echo/echo_service.h"

namespace bevrpc {
namespace {

// docs/naming.md shows tests/docs/example.endpoints as the file format.
std::string ReadExample() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir ? srcdir : ".",
                                "/bevrpc/tests/docs/example.endpoints"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(NamingExampleTest, EndpointsFileParsesAsDocumented) {
  naming::ParsedEndpointFile parsed = naming::ParseEndpointFile(ReadExample());
  EXPECT_TRUE(parsed.errors.empty());
  ASSERT_EQ(parsed.endpoints.size(), 3u);
  EXPECT_EQ(parsed.endpoints[0].address, "10.0.0.1:8080");
  EXPECT_EQ(parsed.endpoints[0].weight, 2u);
  EXPECT_EQ(parsed.endpoints[0].zone, "eu-1a");
  EXPECT_EQ(parsed.endpoints[0].id, "kv-0");
  EXPECT_EQ(parsed.endpoints[0].version, "1.4.0");
  EXPECT_EQ(parsed.endpoints[1].weight, 1u);
  EXPECT_EQ(parsed.endpoints[2].address, "[fd00::3]:8080");
}

std::unique_ptr<Server> StartEcho() {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  auto server = std::make_unique<Server>(options);
  EXPECT_TRUE(echo::RegisterEchoService(*server).ok());
  EXPECT_TRUE(server->Start().ok());
  return server;
}

// [START ring_hash_channel]
// A call keyed by user, over the replicas listed in the file at `path`.
absl::StatusOr<std::unique_ptr<Channel>> CallByKey(const std::string& path) {
  ChannelOptions options;
  options.load_balancer = "ring_hash";
  options.num_connections = 2;  // Per endpoint.
  absl::StatusOr<std::unique_ptr<Channel>> channel =
      Channel::Create("file://" + path, options);
  if (!channel.ok()) return channel.status();  // Bad target or balancer.
  echo::Echo::Stub stub(channel->get());

  CallOptions call;
  call.timeout = absl::Seconds(1);
  call.hash_key = "user-42";    // The same key goes to the same replica.
  call.wait_for_ready = true;   // An empty list waits (within the timeout).
  echo::EchoRequest request;
  request.set_message("hi");
  absl::StatusOr<echo::EchoResponse> response = stub.Echo(request, call);
  if (!response.ok()) return response.status();

  for (const ChannelEndpoint& e : (*channel)->endpoints()) {
    std::printf("%s %s id=%s calls=%llu\n", e.address.c_str(),
                e.state.c_str(), e.id.c_str(),
                static_cast<unsigned long long>(e.calls_started));
  }
  return channel;
}
// [END ring_hash_channel]

TEST(NamingExampleTest, RingHashChannelOverAFile) {
  std::unique_ptr<Server> a = StartEcho();
  std::unique_ptr<Server> b = StartEcho();
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/echo.endpoints");
  {
    // Written whole, then renamed over the old file, as writers should.
    std::ofstream out(path + ".tmp");
    out << "127.0.0.1:" << a->port() << " id=echo-a\n"
        << "127.0.0.1:" << b->port() << " id=echo-b\n";
  }
  ASSERT_EQ(std::rename((path + ".tmp").c_str(), path.c_str()), 0);

  absl::StatusOr<std::unique_ptr<Channel>> channel = CallByKey(path);
  ASSERT_TRUE(channel.ok()) << channel.status();
  echo::Echo::Stub stub(channel->get());
  CallOptions call;
  call.timeout = absl::Seconds(1);
  call.hash_key = "user-42";
  echo::EchoRequest request;

  // Ten more calls with the key: all on the replica that served the first.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stub.Echo(request, call).ok());
  std::vector<ChannelEndpoint> eps = (*channel)->endpoints();
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_TRUE((eps[0].calls_started == 11 && eps[1].calls_started == 0) ||
              (eps[0].calls_started == 0 && eps[1].calls_started == 11))
      << eps[0].calls_started << " " << eps[1].calls_started;
}

}  // namespace
}  // namespace bevrpc
