// Code generated from .proto files with fixed import paths
// (strip_import_prefix, import_prefix) is included by those paths, finds its
// descriptors, and serves calls.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "acme/greet/v1/greet.bevrpc.h"
#include "acme/greet/v1/types.pb.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "vendor/relay/relay.bevrpc.h"

namespace {

using ::acme::greet::v1::Greeter;
using ::acme::greet::v1::Greeting;
using ::vendor::relay::Relay;

class GreeterImpl : public Greeter::Service {
 public:
  absl::Status Greet(bevrpc::ServerContext& ctx, const Greeting& request,
                     Greeting* response) override {
    response->set_text(absl::StrCat("hello, ", request.text()));
    return absl::OkStatus();
  }
};

class RelayImpl : public Relay::Service {
 public:
  absl::Status Forward(bevrpc::ServerContext& ctx, const Greeting& request,
                       Greeting* response) override {
    response->set_text(absl::StrCat("relayed ", request.text()));
    return absl::OkStatus();
  }
};

TEST(FixedImportTest, DescriptorsAreFoundByImportPath) {
  ASSERT_NE(Greeter::descriptor(), nullptr);
  EXPECT_EQ(Greeter::descriptor()->full_name(), "acme.greet.v1.Greeter");
  EXPECT_EQ(Greeter::descriptor()->file()->name(), "acme/greet/v1/greet.proto");
  ASSERT_NE(Relay::descriptor(), nullptr);
  EXPECT_EQ(Relay::descriptor()->file()->name(), "vendor/relay/relay.proto");
}

TEST(FixedImportTest, ServesAndCalls) {
  GreeterImpl greeter;
  RelayImpl relay;
  bevrpc::Server server(bevrpc::ServerOptions{});
  ASSERT_TRUE(server.RegisterService(&greeter).ok());
  ASSERT_TRUE(server.RegisterService(&relay).ok());
  ASSERT_TRUE(server.Start().ok());
  auto channel =
      bevrpc::Channel::Create(absl::StrCat("127.0.0.1:", server.port()));
  ASSERT_TRUE(channel.ok()) << channel.status();
  bevrpc::CallOptions options;
  options.timeout = absl::Seconds(10);
  Greeting request;
  request.set_text("ada");
  Greeter::Stub greeter_stub(channel->get());
  absl::StatusOr<Greeting> greeted = greeter_stub.Greet(request, options);
  ASSERT_TRUE(greeted.ok()) << greeted.status();
  EXPECT_EQ(greeted->text(), "hello, ada");
  Relay::Stub relay_stub(channel->get());
  absl::StatusOr<Greeting> relayed = relay_stub.Forward(request, options);
  ASSERT_TRUE(relayed.ok()) << relayed.status();
  EXPECT_EQ(relayed->text(), "relayed ada");
  channel->reset();
  server.Shutdown(absl::Seconds(1));
}

}  // namespace
