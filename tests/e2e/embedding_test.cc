// A server and a channel running on loops the application owns and runs
// (ServerOptions::loops, ChannelOptions::loops), as an embedding backend
// would: the library starts no I/O threads of its own.
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "transport/event_loop.h"
#include "transport/loop_pool.h"

namespace bevrpc {
namespace {

TEST(EmbeddingTest, ServerAndChannelOnApplicationLoops) {
  // The application's own loop and thread.
  auto app_loop = transport::EventLoop::Create();
  ASSERT_TRUE(app_loop.ok());
  std::thread app_thread([&] { (*app_loop)->Run(); });
  auto loops = transport::LoopPool::Borrow({app_loop->get()});

  ServerOptions options;
  options.loops = loops.get();
  auto server = std::make_unique<Server>(options);
  ASSERT_TRUE(echo::RegisterEchoService(*server).ok());
  ASSERT_TRUE(server->Start().ok());

  ChannelOptions channel_options;
  channel_options.loops = loops.get();
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server->port()),
                                 channel_options);
  ASSERT_TRUE(channel.ok());
  for (int i = 0; i < 100; ++i) {
    echo::EchoRequest req;
    req.set_message(absl::StrCat("embedded ", i));
    echo::EchoResponse resp;
    ASSERT_TRUE((*channel)->Call(echo::kEchoMethod, req, &resp).ok());
    EXPECT_EQ(resp.message(), req.message());
  }
  channel->reset();
  server->Shutdown(absl::Seconds(1));
  server.reset();
  // The application's loop is still alive and usable.
  Notification posted;
  (*app_loop)->Post([&] { posted.Notify(); });
  EXPECT_TRUE(posted.WaitForNotificationWithTimeout(absl::Seconds(5)));
  (*app_loop)->Quit();
  app_thread.join();
}

}  // namespace
}  // namespace bevrpc
