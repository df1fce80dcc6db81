// Tests for Listener: binding port 0, accepting on the loop, refusing a
// second bind of the same port unless reuse_port is asked for. Loopback only.
#include "transport/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/address.h"
#include "transport/event_loop.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::transport {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

using ::bevrpc::transport::testing::LoopThread;

SocketAddress Loopback(int port) {
  return SocketAddress::Parse(absl::StrCat("127.0.0.1:", port)).value();
}

// A blocking loopback client socket connected to `port`, or -1.
int ConnectClient(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  SocketAddress addr = Loopback(port);
  if (connect(fd, addr.sa(), addr.length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Collects accepted fds (closing them at the end).
class Accepted {
 public:
  ~Accepted() {
    for (int fd : fds_) close(fd);
  }
  Listener::AcceptCallback Callback(EventLoop* loop) {
    return [this, loop](int fd) {
      MutexLock l(&mu_);
      if (!loop->IsInLoopThread()) ++off_loop_;
      fds_.push_back(fd);
      cv_.SignalAll();
    };
  }
  bool WaitForCount(size_t n, absl::Duration timeout = kWait) {
    absl::Time deadline = absl::Now() + timeout;
    MutexLock l(&mu_);
    while (fds_.size() < n) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      cv_.WaitWithTimeout(&mu_, left);
    }
    return true;
  }
  std::vector<int> fds() {
    MutexLock l(&mu_);
    return fds_;
  }
  int off_loop() {
    MutexLock l(&mu_);
    return off_loop_;
  }

 private:
  Mutex mu_;
  CondVar cv_;  // Signalled when fds_ grows.
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);
  int off_loop_ ABSL_GUARDED_BY(mu_) = 0;
};

class ListenerTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Listener>> Create(
      int port, const ListenerOptions& options, Accepted* accepted) {
    absl::StatusOr<std::unique_ptr<Listener>> result =
        absl::InternalError("not run");
    EXPECT_TRUE(lt_.RunOnLoop([&] {
      result = Listener::Create(lt_.loop(), Loopback(port), options,
                                accepted->Callback(lt_.loop()));
    }));
    return result;
  }
  void Destroy(std::unique_ptr<Listener>& l) {
    EXPECT_TRUE(lt_.RunOnLoop([&] { l.reset(); }));
  }

  LoopThread lt_;
  Accepted accepted_;
};

TEST_F(ListenerTest, PortZeroBindsARealPort) {
  auto listener = Create(0, {}, &accepted_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  int port = (*listener)->port();
  EXPECT_GT(port, 0);
  EXPECT_LE(port, 65535);
  int client = ConnectClient(port);
  EXPECT_GE(client, 0) << "cannot connect to the reported port " << port;
  if (client >= 0) close(client);
  Destroy(*listener);
}

TEST_F(ListenerTest, AcceptCallbackGetsConnectedFdsOnTheLoop) {
  auto listener = Create(0, {}, &accepted_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  int port = (*listener)->port();

  constexpr int kClients = 5;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) {
    int fd = ConnectClient(port);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    clients.push_back(fd);
  }
  ASSERT_TRUE(accepted_.WaitForCount(kClients));
  EXPECT_EQ(accepted_.off_loop(), 0);

  // Each accepted fd is the server end of one of our clients: bytes written
  // by client i arrive on exactly one accepted fd.
  std::vector<int> fds = accepted_.fds();
  ASSERT_EQ(fds.size(), static_cast<size_t>(kClients));
  std::vector<std::string> local_ports;
  for (int fd : fds) {
    absl::StatusOr<SocketAddress> peer = SocketAddress::FromPeerName(fd);
    ASSERT_TRUE(peer.ok()) << peer.status();
    local_ports.push_back(peer->ToString());
  }
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<SocketAddress> local =
        SocketAddress::FromSocketName(clients[i]);
    ASSERT_TRUE(local.ok());
    EXPECT_THAT(local_ports, ::testing::Contains(local->ToString()));
  }
  // The fds are usable: a round trip through the first one.
  ASSERT_EQ(write(clients[0], "ping", 4), 4);
  for (int fd : fds) {
    absl::StatusOr<SocketAddress> peer = SocketAddress::FromPeerName(fd);
    if (peer->ToString() !=
        SocketAddress::FromSocketName(clients[0])->ToString()) {
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    char buf[8];
    EXPECT_EQ(read(fd, buf, sizeof(buf)), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
  }
  for (int fd : clients) close(fd);
  Destroy(*listener);
}

TEST_F(ListenerTest, SecondListenerOnSamePortFailsWithoutReusePort) {
  auto first = Create(0, {}, &accepted_);
  ASSERT_TRUE(first.ok()) << first.status();
  int port = (*first)->port();

  Accepted other;
  auto second = Create(port, {}, &other);
  ASSERT_FALSE(second.ok()) << "a second server silently bound port " << port;
  std::string message(second.status().message());
  EXPECT_THAT(message, HasSubstr(absl::StrCat(port)));
  EXPECT_THAT(message, HasSubstr("in use"));

  // The first listener still works.
  int client = ConnectClient(port);
  ASSERT_GE(client, 0);
  EXPECT_TRUE(accepted_.WaitForCount(1));
  EXPECT_TRUE(other.fds().empty());
  close(client);
  Destroy(*first);
}

TEST_F(ListenerTest, ReusePortOnOneSideOnlyStillFails) {
  ListenerOptions reuse;
  reuse.reuse_port = true;
  auto first = Create(0, {}, &accepted_);
  ASSERT_TRUE(first.ok()) << first.status();
  Accepted other;
  auto second = Create((*first)->port(), reuse, &other);
  EXPECT_FALSE(second.ok());
  Destroy(*first);
}

TEST_F(ListenerTest, ReusePortOnBothSharesThePort) {
  ListenerOptions reuse;
  reuse.reuse_port = true;
  auto first = Create(0, reuse, &accepted_);
  ASSERT_TRUE(first.ok()) << first.status();
  int port = (*first)->port();
  Accepted other;
  auto second = Create(port, reuse, &other);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->port(), port);

  // Connections land on one listener or the other; none are lost.
  constexpr int kClients = 16;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) {
    int fd = ConnectClient(port);
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
  }
  absl::Time deadline = absl::Now() + kWait;
  while (accepted_.fds().size() + other.fds().size() < kClients &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(accepted_.fds().size() + other.fds().size(),
            static_cast<size_t>(kClients));
  for (int fd : clients) close(fd);
  Destroy(*second);
  Destroy(*first);
}

TEST_F(ListenerTest, DisableStopsAccepting) {
  auto listener = Create(0, {}, &accepted_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  int port = (*listener)->port();
  int c1 = ConnectClient(port);
  ASSERT_GE(c1, 0);
  ASSERT_TRUE(accepted_.WaitForCount(1));

  ASSERT_TRUE(lt_.RunOnLoop([&] { (*listener)->Disable(); }));
  // The kernel still completes the handshake (backlog), but the callback
  // must not see it.
  int c2 = ConnectClient(port);
  ASSERT_GE(c2, 0);
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(lt_.RunOnLoop([] {}));
  EXPECT_EQ(accepted_.fds().size(), 1u);
  close(c1);
  close(c2);
  Destroy(*listener);
}

TEST_F(ListenerTest, DestroyingTheListenerClosesThePort) {
  auto listener = Create(0, {}, &accepted_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  int port = (*listener)->port();
  Destroy(*listener);
  int client = ConnectClient(port);
  EXPECT_LT(client, 0) << "port " << port << " still accepts connections";
  if (client >= 0) close(client);
  // And the port can be bound again at once (SO_REUSEADDR).
  auto again = Create(port, {}, &accepted_);
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) Destroy(*again);
}

// Running out of file descriptors is transient: the listener pauses
// accepting instead of dying or spinning, and picks up the waiting
// connection once descriptors are free again.
TEST_F(ListenerTest, AcceptResumesAfterRunningOutOfFds) {
  auto listener = Create(0, {}, &accepted_);
  ASSERT_TRUE(listener.ok()) << listener.status();
  int port = (*listener)->port();
  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);

  // Use up every descriptor below a lowered soft limit.
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = dup(0);
  ASSERT_GE(highest, 0);
  std::vector<int> fillers = {highest};
  rlimit low = saved;
  low.rlim_cur = highest + 1;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int i = 0; i < 4096; ++i) {
    int fd = dup(0);
    if (fd < 0) break;
    fillers.push_back(fd);
  }
  int probe = dup(0);
  bool exhausted = probe < 0 && errno == EMFILE;
  if (probe >= 0) fillers.push_back(probe);

  // The handshake completes in the kernel; accept(2) then fails.
  SocketAddress addr = Loopback(port);
  int rc = exhausted ? connect(client, addr.sa(), addr.length) : -1;
  absl::SleepFor(absl::Milliseconds(300));
  size_t accepted_while_exhausted = accepted_.fds().size();

  for (int fd : fillers) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_TRUE(exhausted) << "could not exhaust file descriptors";
  ASSERT_EQ(rc, 0) << std::strerror(errno);
  EXPECT_EQ(accepted_while_exhausted, 0u);

  EXPECT_TRUE(accepted_.WaitForCount(1, absl::Seconds(5)))
      << "the listener never resumed accepting";
  // And it keeps accepting new connections afterwards.
  int second = ConnectClient(port);
  ASSERT_GE(second, 0);
  EXPECT_TRUE(accepted_.WaitForCount(2, absl::Seconds(5)));
  close(second);
  close(client);
  Destroy(*listener);
}

}  // namespace
}  // namespace bevrpc::transport
