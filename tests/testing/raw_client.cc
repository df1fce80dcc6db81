// RawClient: a plain POSIX-socket wire-v1 client for tests (see raw_client.h).
#include "tests/testing/raw_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace bevrpc {
namespace testing {
namespace {

// Frames larger than this are treated as corrupt by the test client; no test
// expects the server to send anything near it.
constexpr uint32_t kMaxReadBodySize = 64 << 20;

int PollMillis(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms < 0) return 0;
  if (ms > 1000000) return 1000000;
  return static_cast<int>(ms);
}

void AppendBigEndian32(uint32_t value, std::string* out) {
  out->push_back(static_cast<char>((value >> 24) & 0xff));
  out->push_back(static_cast<char>((value >> 16) & 0xff));
  out->push_back(static_cast<char>((value >> 8) & 0xff));
  out->push_back(static_cast<char>(value & 0xff));
}

uint32_t ReadBigEndian32(const char* p) {
  const unsigned char* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) |
         (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

absl::Status ErrnoStatus(absl::string_view what, int err) {
  std::string message = absl::StrCat(what, ": ", strerror(err));
  if (err == EPIPE || err == ECONNRESET) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

}  // namespace

std::string EncodeHeader(uint32_t body_size, uint32_t meta_size,
                         absl::string_view magic) {
  std::string header(magic);
  AppendBigEndian32(body_size, &header);
  AppendBigEndian32(meta_size, &header);
  return header;
}

std::string EncodeFrameWithRawMeta(absl::string_view meta_bytes,
                                   absl::string_view payload) {
  std::string frame =
      EncodeHeader(static_cast<uint32_t>(meta_bytes.size() + payload.size()),
                   static_cast<uint32_t>(meta_bytes.size()));
  absl::StrAppend(&frame, meta_bytes, payload);
  return frame;
}

std::string EncodeFrame(const wire::FrameMeta& meta,
                        absl::string_view payload) {
  return EncodeFrameWithRawMeta(meta.SerializeAsString(), payload);
}

std::string DescribeFrame(const Frame& frame) {
  std::string text = absl::StrCat(
      "kind=", wire::FrameKind_Name(frame.meta.kind()), "(",
      static_cast<int>(frame.meta.kind()), ") call_id=", frame.meta.call_id());
  if (frame.meta.kind() == wire::RESPONSE ||
      frame.meta.kind() == wire::GOAWAY) {
    absl::StrAppend(&text, " status=", frame.meta.status_code(), " \"",
                    frame.meta.status_message(), "\"");
  }
  if (frame.meta.kind() == wire::GOAWAY) {
    absl::StrAppend(&text, " last_call_id=", frame.meta.last_call_id());
  }
  absl::StrAppend(&text, " payload=", frame.payload.size(), "B");
  return text;
}

absl::StatusOr<std::unique_ptr<RawClient>> RawClient::Connect(
    int port, absl::Duration timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  std::unique_ptr<RawClient> client(new RawClient(fd));

  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) ==
      0) {
    return client;
  }
  if (errno != EINPROGRESS) return ErrnoStatus("connect", errno);

  struct pollfd pfd = {fd, POLLOUT, 0};
  int ready = poll(&pfd, 1, PollMillis(absl::Now() + timeout));
  if (ready == 0) {
    return absl::DeadlineExceededError(
        absl::StrCat("connect to 127.0.0.1:", port, " timed out"));
  }
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    return ErrnoStatus(absl::StrCat("connect to 127.0.0.1:", port), err);
  }
  return client;
}

std::unique_ptr<RawClient> RawClient::Adopt(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<RawClient>(new RawClient(fd));
}

RawClient::~RawClient() {
  if (fd_ >= 0) close(fd_);
}

absl::Status RawClient::SetNoDelay() {
  int one = 1;
  if (setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt(TCP_NODELAY)", errno);
  }
  return absl::OkStatus();
}

absl::Status RawClient::Write(absl::string_view bytes,
                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!bytes.empty()) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return ErrnoStatus("send", errno);
    }
    struct pollfd pfd = {fd_, POLLOUT, 0};
    int ready = poll(&pfd, 1, PollMillis(deadline));
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("peer did not take ", bytes.size(),
                       " more bytes within ", absl::FormatDuration(timeout)));
    }
  }
  return absl::OkStatus();
}

absl::Status RawClient::ReadSome(absl::Time deadline) {
  while (true) {
    char buf[64 * 1024];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      buffer_.append(buf, n);
      return absl::OkStatus();
    }
    if (n == 0) return absl::UnavailableError("connection closed by peer");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return ErrnoStatus("recv", errno);
    }
    struct pollfd pfd = {fd_, POLLIN, 0};
    int ready = poll(&pfd, 1, PollMillis(deadline));
    if (ready == 0) return absl::DeadlineExceededError("no data before deadline");
  }
}

absl::StatusOr<Frame> RawClient::ReadFrame(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (buffer_.size() >= kFrameHeaderSize) {
      if (absl::string_view(buffer_).substr(0, 4) != kFrameMagic) {
        return absl::DataLossError(
            absl::StrCat("bad magic from server: \"",
                         absl::CHexEscape(buffer_.substr(0, 4)), "\""));
      }
      const uint32_t body_size = ReadBigEndian32(buffer_.data() + 4);
      const uint32_t meta_size = ReadBigEndian32(buffer_.data() + 8);
      if (meta_size > body_size || body_size > kMaxReadBodySize) {
        return absl::DataLossError(
            absl::StrCat("bad header from server: body_size ", body_size,
                         " meta_size ", meta_size));
      }
      if (buffer_.size() >= kFrameHeaderSize + body_size) {
        Frame frame;
        if (!frame.meta.ParseFromArray(buffer_.data() + kFrameHeaderSize,
                                       static_cast<int>(meta_size))) {
          return absl::DataLossError("FrameMeta from server does not parse");
        }
        frame.payload = buffer_.substr(kFrameHeaderSize + meta_size,
                                       body_size - meta_size);
        buffer_.erase(0, kFrameHeaderSize + body_size);
        return frame;
      }
    }
    absl::Status read = ReadSome(deadline);
    if (!read.ok()) {
      if (absl::IsDeadlineExceeded(read)) {
        return absl::DeadlineExceededError(absl::StrCat(
            "no complete frame within ", absl::FormatDuration(timeout), " (",
            buffer_.size(), " bytes buffered)"));
      }
      if (!buffer_.empty()) {
        return absl::Status(read.code(),
                            absl::StrCat(read.message(), " with ",
                                         buffer_.size(),
                                         " bytes of a partial frame"));
      }
      return read;
    }
  }
}

absl::StatusOr<HttpReply> RawClient::ReadHttpResponse(absl::Duration timeout,
                                                      bool head) {
  const absl::Time deadline = absl::Now() + timeout;
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > (1 << 20)) {
      return absl::DataLossError("HTTP response head over 1 MiB");
    }
    absl::Status read = ReadSome(deadline);
    if (!read.ok()) return read;
  }
  HttpReply reply;
  std::vector<absl::string_view> lines = absl::StrSplit(
      absl::string_view(buffer_).substr(0, head_end), "\r\n");
  std::vector<absl::string_view> status_line =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || status_line[0] != "HTTP/1.1" ||
      !absl::SimpleAtoi(status_line[1], &reply.status)) {
    return absl::DataLossError(
        absl::StrCat("not an HTTP/1.1 status line: ", lines[0]));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat("bad header: ", lines[i]));
    }
    reply.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  size_t length = 0;
  auto cl = reply.headers.find("content-length");
  if (!head && cl != reply.headers.end() &&
      !absl::SimpleAtoi(cl->second, &length)) {
    return absl::DataLossError("bad Content-Length");
  }
  const size_t body_start = head_end + 4;
  while (buffer_.size() < body_start + length) {
    absl::Status read = ReadSome(deadline);
    if (!read.ok()) return read;
  }
  reply.body = buffer_.substr(body_start, length);
  buffer_.erase(0, body_start + length);
  return reply;
}

absl::Status RawClient::WaitForClose(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (buffer_.empty()) {
    absl::Status read = ReadSome(deadline);
    if (absl::IsUnavailable(read)) return absl::OkStatus();
    if (absl::IsDeadlineExceeded(read)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "connection still open after ", absl::FormatDuration(timeout)));
    }
    if (!read.ok()) return read;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("expected the connection to close, but received ",
                   buffer_.size(), " more bytes"));
}

void RawClient::ResetAndClose() {
  if (fd_ < 0) return;
  struct linger linger = {1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
  close(fd_);
  fd_ = -1;
}

}  // namespace testing
}  // namespace bevrpc
