// idle_connections: how much server memory an idle connection costs.
//
//   echo_server --port=0 &                       # note its PID and port
//   idle_connections --port=PORT --server_pid=PID --connections=10000
//
// Reads the server's VmRSS, opens N TCP connections to 127.0.0.1:PORT,
// proves each one is served (a PING answered by a PONG), waits for the RSS
// to settle, reads it again, and prints the difference per connection. The
// connections then close. Loopback only; raises its own open-files limit.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "rpc/wire.pb.h"
#include "rpc/wire_format.h"

ABSL_FLAG(int, port, 0, "the server's port on 127.0.0.1");
ABSL_FLAG(int, server_pid, 0, "the server's PID, to read its RSS");
ABSL_FLAG(int, connections, 10000, "idle connections to open");

namespace {

// VmRSS of `pid` in KiB, or -1.
long RssKiB(int pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      long kib = -1;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits += c;
      }
      return absl::SimpleAtoi(digits, &kib) ? kib : -1;
    }
  }
  return -1;
}

std::string PingFrame() {
  bevrpc::wire::FrameMeta meta;
  meta.set_kind(bevrpc::wire::PING);
  std::string meta_bytes = meta.SerializeAsString();
  std::string frame(bevrpc::wire::kHeaderSize, '\0');
  bevrpc::wire::EncodeHeader({static_cast<uint32_t>(meta_bytes.size()),
                              static_cast<uint32_t>(meta_bytes.size())},
                             frame.data());
  return frame + meta_bytes;
}

// Sends a PING and waits (bounded) for an answer: the server has a session
// for this connection.
bool Ping(int fd, const std::string& ping) {
  if (write(fd, ping.data(), ping.size()) != static_cast<ssize_t>(ping.size())) {
    return false;
  }
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 5000) != 1) return false;
  char buf[256];
  return read(fd, buf, sizeof(buf)) > 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  int port = absl::GetFlag(FLAGS_port);
  int pid = absl::GetFlag(FLAGS_server_pid);
  int n = absl::GetFlag(FLAGS_connections);
  if (port <= 0 || pid <= 0 || n <= 0) {
    std::cerr << "usage: idle_connections --port=P --server_pid=PID "
                 "[--connections=N]\n";
    return 2;
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  long before = RssKiB(pid);
  std::string ping = PingFrame();
  std::vector<int> fds;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr),
                          sizeof(addr)) != 0 ||
        !Ping(fd, ping)) {
      std::cerr << "idle_connections: connection " << i
                << " failed; opened " << fds.size() << "\n";
      if (fd >= 0) close(fd);
      break;
    }
    fds.push_back(fd);
  }
  absl::SleepFor(absl::Seconds(1));  // Let the server's allocator settle.
  long after = RssKiB(pid);
  int opened = static_cast<int>(fds.size());
  for (int fd : fds) close(fd);
  if (before < 0 || after < 0 || opened == 0) {
    std::cerr << "idle_connections: cannot read the server's RSS\n";
    return 1;
  }
  double per_conn = (after - before) * 1024.0 / opened;
  std::printf(
      "{\"connections\":%d,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
      "\"bytes_per_connection\":%.0f}\n",
      opened, before, after, per_conn);
  return 0;
}
