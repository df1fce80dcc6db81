#include "services/builtin/server_info_service.h"

#include <unistd.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"

namespace bevrpc::builtin {
namespace {

using server::v1::GetServerInfoRequest;
using server::v1::ServerInfo;
using server::v1::ServerInfoResponse;

TEST(ServerInfoServiceTest, AnswersWithThisProcess) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  Server server(options);
  ServerInfoFacts facts;
  facts.name = "test_server";
  facts.id = "kv/1";
  facts.started = absl::FromUnixMillis(1234);
  ServerInfoService info(facts);
  ASSERT_TRUE(server.RegisterService(&info).ok());
  ASSERT_TRUE(server.Start().ok());
  std::string address = absl::StrCat("127.0.0.1:", server.port());
  info.SetListenAddress(address);

  auto channel = Channel::Create(address);
  ASSERT_TRUE(channel.ok()) << channel.status();
  ServerInfo::Stub stub(channel->get());
  absl::StatusOr<ServerInfoResponse> got = stub.Get(GetServerInfoRequest());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->pid(), getpid());
  EXPECT_EQ(got->worker(), -1);
  EXPECT_EQ(got->master_pid(), 0);
  EXPECT_EQ(got->id(), "kv/1");
  EXPECT_EQ(got->name(), "test_server");
  EXPECT_EQ(got->listen_address(), address);
  EXPECT_EQ(got->started_unix_ms(), 1234);
  // Get has no side effects: channels may retry it.
  EXPECT_EQ(ServerInfo::kGetIdempotency, Idempotency::kNoSideEffects);
  server.Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace bevrpc::builtin
