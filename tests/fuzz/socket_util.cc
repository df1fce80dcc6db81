// Loopback sockets for the network fuzz targets (see socket_util.h).
#include "tests/fuzz/socket_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace bevrpc::fuzz {
namespace {

constexpr size_t kHeaderSize = 12;

bool SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

int MillisLeft(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now()) + 1;
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1000));
}

void RejectWaiting(int listener) {
  if (listener < 0) return;
  for (int fd; (fd = AcceptNonBlocking(listener)) >= 0;) ResetAndClose(fd);
}

// Reads what is there into `*in`. False at EOF or on an error other than
// "would block".
bool ReadAvailable(int fd, std::string* in) {
  char buf[16384];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      in->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;  // EOF, ECONNRESET, ...
  }
}

// Whether `in` starts with `count` whole frames (by their headers alone).
bool HasWholeFrames(const std::string& in, int count) {
  size_t pos = 0;
  for (int i = 0; i < count; ++i) {
    if (in.size() - pos < kHeaderSize) return false;
    auto b = reinterpret_cast<const unsigned char*>(in.data() + pos);
    uint64_t body = (uint64_t{b[4]} << 24) | (uint64_t{b[5]} << 16) |
                    (uint64_t{b[6]} << 8) | uint64_t{b[7]};
    if (in.size() - pos - kHeaderSize < body) return false;
    pos += kHeaderSize + body;
  }
  return true;
}

}  // namespace

int ListenLoopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 128) != 0 || !SetNonBlocking(fd) ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "listen on 127.0.0.1: %s\n", std::strerror(errno));
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

int ConnectLoopback(int port, absl::Time deadline) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || !SetNonBlocking(fd)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  sockaddr_in addr = Loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return fd;
  }
  if (errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  while (true) {
    pollfd p{fd, POLLOUT, 0};
    int r = poll(&p, 1, MillisLeft(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) break;
    if (absl::Now() >= deadline) {
      close(fd);
      return -1;
    }
  }
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int AcceptNonBlocking(int listener) {
  int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return fd;
}

absl::Status ReadFrames(int fd, int count, absl::Time deadline,
                        std::string* in, int reject_listener) {
  while (!HasWholeFrames(*in, count)) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("not ", count, " whole frames in ", in->size(),
                       " bytes"));
    }
    pollfd p[2] = {{fd, POLLIN, 0}, {reject_listener, POLLIN, 0}};
    int r = poll(p, reject_listener >= 0 ? 2 : 1, MillisLeft(deadline));
    if (r < 0 && errno != EINTR) return absl::InternalError("poll failed");
    RejectWaiting(reject_listener);
    if (r > 0 && p[0].revents != 0 && !ReadAvailable(fd, in)) {
      if (HasWholeFrames(*in, count)) break;
      return absl::UnavailableError("peer closed before a whole frame");
    }
  }
  return absl::OkStatus();
}

namespace {

// Exchange() and ExchangeUntil(): with `half_close`, SHUT_WR once all is
// written and wait for the peer to close; else stop once `done` holds.
absl::Status Pump(int fd, absl::string_view out, absl::Time deadline,
                  std::string* in, int reject_listener, bool half_close,
                  absl::FunctionRef<bool(const std::string&)> done) {
  size_t written = 0;
  bool write_closed = false;
  while (true) {
    if (!write_closed && written == out.size()) {
      if (half_close) shutdown(fd, SHUT_WR);
      write_closed = true;
    }
    if (!half_close && write_closed && done(*in)) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          half_close ? "peer still open" : "no answer", ": wrote ", written,
          " of ", out.size(), " bytes, read ", in->size()));
    }
    short events = POLLIN;
    if (!write_closed) events |= POLLOUT;
    pollfd p[2] = {{fd, events, 0}, {reject_listener, POLLIN, 0}};
    int r = poll(p, reject_listener >= 0 ? 2 : 1, MillisLeft(deadline));
    if (r < 0 && errno != EINTR) return absl::InternalError("poll failed");
    RejectWaiting(reject_listener);
    if (r <= 0) continue;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
        !ReadAvailable(fd, in)) {
      return absl::OkStatus();  // The peer closed (or reset).
    }
    if (!write_closed && (p[0].revents & POLLOUT) != 0) {
      ssize_t n = send(fd, out.data() + written, out.size() - written,
                       MSG_NOSIGNAL);
      if (n > 0) {
        written += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                 errno != EINTR) {
        write_closed = true;  // Reset: read what is left, then EOF.
      }
    }
  }
}

}  // namespace

absl::Status Exchange(int fd, absl::string_view out, absl::Time deadline,
                      std::string* in, int reject_listener) {
  return Pump(fd, out, deadline, in, reject_listener, /*half_close=*/true,
              [](const std::string&) { return false; });
}

absl::Status ExchangeUntil(int fd, absl::string_view out, absl::Time deadline,
                           std::string* in,
                           absl::FunctionRef<bool(const std::string&)> done) {
  return Pump(fd, out, deadline, in, /*reject_listener=*/-1,
              /*half_close=*/false, done);
}

void ResetAndClose(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

}  // namespace bevrpc::fuzz
