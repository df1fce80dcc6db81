// RawClient: a plain POSIX-socket client for bevrpc wire protocol v1 tests.
//
// It talks to 127.0.0.1 only, writes arbitrary bytes (well-formed frames or
// deliberately broken ones), and reads and decodes frames with a timeout. It
// implements the frame layout independently of the library under test:
//
//   bytes 0-3   magic "BEVR"
//   bytes 4-7   body_size, u32 big-endian = meta bytes + payload bytes
//   bytes 8-11  meta_size, u32 big-endian (<= body_size)
//   meta_size bytes of serialized bevrpc.wire.FrameMeta, then the payload.
//
// Example:
//   absl::StatusOr<std::unique_ptr<RawClient>> client =
//       RawClient::Connect(port);
//   bevrpc::wire::FrameMeta ping;
//   ping.set_kind(bevrpc::wire::PING);
//   ASSERT_TRUE((*client)->Write(EncodeFrame(ping, "abc")).ok());
//   absl::StatusOr<Frame> pong = (*client)->ReadFrame(absl::Seconds(2));
#ifndef BEVRPC_TESTS_TESTING_RAW_CLIENT_H_
#define BEVRPC_TESTS_TESTING_RAW_CLIENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/wire.pb.h"

namespace bevrpc {
namespace testing {

inline constexpr absl::string_view kFrameMagic = "BEVR";
inline constexpr size_t kFrameHeaderSize = 12;

// One decoded frame.
struct Frame {
  wire::FrameMeta meta;
  std::string payload;
};

// The 12-byte header with the given fields (and magic, for broken frames).
std::string EncodeHeader(uint32_t body_size, uint32_t meta_size,
                         absl::string_view magic = kFrameMagic);

// A complete frame: header + serialized `meta` + `payload`.
std::string EncodeFrame(const wire::FrameMeta& meta, absl::string_view payload);

// A frame whose meta section is the given raw bytes (which may not parse).
std::string EncodeFrameWithRawMeta(absl::string_view meta_bytes,
                                   absl::string_view payload);

// "kind=RESPONSE call_id=3 status=4 \"...\"" for test failure messages.
std::string DescribeFrame(const Frame& frame);

// One HTTP/1.1 response, as ReadHttpResponse() decodes it.
struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // Names lower-cased.
  std::string body;
};

// A connected TCP socket to 127.0.0.1. Not thread-safe. Closes on destruction.
class RawClient {
 public:
  // Connects to 127.0.0.1:`port`, waiting at most `timeout`.
  static absl::StatusOr<std::unique_ptr<RawClient>> Connect(
      int port, absl::Duration timeout = absl::Seconds(5));

  // Takes over `fd`, a connected TCP socket (e.g. one a test accepted to
  // play the server), made non-blocking here. Closes it on destruction.
  static std::unique_ptr<RawClient> Adopt(int fd);

  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient();

  // Turns Nagle's algorithm off, so each Write() goes out as its own segment.
  absl::Status SetNoDelay();

  // Writes all of `bytes`, waiting at most `timeout` for the peer to take them.
  // A peer that closed or reset shows as kUnavailable.
  absl::Status Write(absl::string_view bytes,
                     absl::Duration timeout = absl::Seconds(10));

  // Reads one complete frame, waiting at most `timeout`. Errors:
  // kDeadlineExceeded if no complete frame arrived in time, kUnavailable if the
  // peer closed or reset the connection, kDataLoss if the bytes are not a
  // valid frame.
  absl::StatusOr<Frame> ReadFrame(absl::Duration timeout = absl::Seconds(5));

  // Reads one HTTP response (its body by Content-Length; none after a HEAD
  // request when `head`), waiting at most `timeout`. Errors as ReadFrame();
  // kDataLoss if the bytes are not an HTTP response.
  absl::StatusOr<HttpReply> ReadHttpResponse(
      absl::Duration timeout = absl::Seconds(5), bool head = false);

  // Waits at most `timeout` for the peer to close the connection. OK on EOF or
  // reset with no unread bytes; kFailedPrecondition if bytes arrive instead;
  // kDeadlineExceeded if the connection stays open.
  absl::Status WaitForClose(absl::Duration timeout = absl::Seconds(5));

  // Closes with SO_LINGER 0, so the kernel sends a RST instead of a FIN.
  void ResetAndClose();

  int fd() const { return fd_; }

 private:
  explicit RawClient(int fd) : fd_(fd) {}

  // Reads whatever is available into `buffer_`, waiting until `deadline`.
  // kDeadlineExceeded on timeout, kUnavailable on EOF or reset.
  absl::Status ReadSome(absl::Time deadline);

  int fd_;
  std::string buffer_;  // Received bytes not yet returned as a frame.
};

}  // namespace testing
}  // namespace bevrpc

#endif  // BEVRPC_TESTS_TESTING_RAW_CLIENT_H_
