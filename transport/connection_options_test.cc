// ConnectionOptions reach the connection: watermarks and buffer sizes given
// at creation are the ones it enforces.
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "transport/connection.h"
#include "transport/event_loop.h"
#include "transport/sync.h"

namespace bevrpc::transport {
namespace {

class NullHandler : public ConnectionHandler {
 public:
  size_t OnReadable(Buffer& input) override { return input.size() + 1; }
  void OnClosed(const absl::Status&) override {}
};

TEST(ConnectionOptionsTest, WriteHighWatermarkIsTheOneGiven) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ConnectionOptions options;
  options.write_high_watermark = 1000;
  options.write_low_watermark = 100;
  NullHandler handler;
  Notification checked;
  bool writable_after_small = false, writable_after_big = true;
  (*loop)->Post([&] {
    auto conn = Connection::Adopt(loop->get(), fds[0], options);
    ASSERT_TRUE(conn.ok());
    (*conn)->Start(&handler);
    // Nothing has been sent yet (writes happen on a later loop turn), so
    // the output holds exactly what was written.
    (*conn)->Write([](Buffer& out) { out.Append(std::string(900, 'a')); });
    writable_after_small = (*conn)->writable();
    (*conn)->Write([](Buffer& out) { out.Append(std::string(200, 'b')); });
    writable_after_big = (*conn)->writable();
    conn->reset();
    checked.Notify();
  });
  std::thread t([&] { (*loop)->Run(); });
  EXPECT_TRUE(checked.WaitForNotificationWithTimeout(absl::Seconds(5)));
  (*loop)->Quit();
  t.join();
  close(fds[1]);
  EXPECT_TRUE(writable_after_small);   // 900 <= 1000
  EXPECT_FALSE(writable_after_big);    // 1100 > 1000: not the 1 MiB default
}

}  // namespace
}  // namespace bevrpc::transport
