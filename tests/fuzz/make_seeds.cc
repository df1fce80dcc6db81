// Writes the seed corpora of the wire fuzz targets (tests/fuzz/corpus/) from
// real frames built with AppendFrame, so the seeds follow the codec.
//
//   bazel run //tests/fuzz:make_seeds -- $PWD/tests/fuzz/corpus
//
// Overwrites the seed files it knows by name and leaves any other file
// (crash regressions, JSON seeds) alone. Rerun after a wire change.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "rpc/frame_codec.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.pb.h"
#include "transport/buffer.h"

namespace bevrpc {
namespace {

namespace fs = std::filesystem;

constexpr char kEcho[] = "bevrpc.echo.Echo/Echo";
constexpr char kExpand[] = "bevrpc.echo.Echo/Expand";
constexpr char kCollect[] = "bevrpc.echo.Echo/Collect";
constexpr char kChat[] = "bevrpc.echo.Echo/Chat";

// Frames appended one after another.
class Stream {
 public:
  Stream& Frame(const wire::FrameMeta& meta,
                const google::protobuf::MessageLite* payload = nullptr) {
    transport::Buffer b;
    AppendFrame(b, meta, payload);
    bytes_ += b.TakeString(b.size());
    return *this;
  }
  Stream& Raw(absl::string_view bytes) {
    bytes_.append(bytes.data(), bytes.size());
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

wire::FrameMeta Meta(wire::FrameKind kind, uint64_t call_id) {
  wire::FrameMeta meta;
  meta.set_kind(kind);
  meta.set_call_id(call_id);
  return meta;
}

wire::FrameMeta Request(uint64_t call_id, const char* method) {
  wire::FrameMeta meta = Meta(wire::REQUEST, call_id);
  meta.set_method(method);
  return meta;
}

echo::EchoRequest EchoReq(const std::string& message, uint32_t delay_ms = 0) {
  echo::EchoRequest r;
  r.set_message(message);
  r.set_delay_ms(delay_ms);
  return r;
}

echo::EchoResponse EchoResp(const std::string& message) {
  echo::EchoResponse r;
  r.set_message(message);
  return r;
}

std::string PingBytes(uint64_t counter) {
  transport::Buffer b;
  AppendPing(b, counter);
  return b.TakeString(b.size());
}

bool Write(const fs::path& dir, const std::string& name,
           const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// Streams a client might send (server_session_fuzzer input; also decoder
// seeds).
void ClientStreams(std::vector<std::pair<std::string, std::string>>* out) {
  echo::EchoRequest hi = EchoReq("hi");
  out->push_back({"echo", Stream().Frame(Request(1, kEcho), &hi).bytes()});

  wire::FrameMeta with_headers = Request(1, kEcho);
  with_headers.set_timeout_us(500000);
  (*with_headers.mutable_metadata())["x-request-id"] = "42";
  echo::EchoRequest fail = EchoReq("no");
  fail.set_fail_code(5);
  fail.set_fail_message("not found");
  out->push_back({"echo_metadata_fail_ping",
                  Stream()
                      .Frame(with_headers, &hi)
                      .Frame(Request(3, kEcho), &fail)
                      .Raw(PingBytes(9))
                      .bytes()});
  out->push_back({"pings", PingBytes(1) + PingBytes(2) + PingBytes(3)});
  echo::EchoRequest slow = EchoReq("slow", 1000);
  out->push_back({"request_cancel",
                  Stream()
                      .Frame(Request(1, kEcho), &slow)
                      .Frame(Meta(wire::CANCEL, 1))
                      .Frame(Request(2, kEcho), &hi)
                      .bytes()});
  echo::ExpandRequest expand;
  expand.set_count(3);
  expand.set_size(5);
  wire::FrameMeta grant = Meta(wire::WINDOW_UPDATE, 1);
  grant.set_window_increment(1000);
  out->push_back({"expand_window",
                  Stream().Frame(Request(1, kExpand), &expand)
                      .Frame(grant)
                      .bytes()});
  echo::EchoRequest a = EchoReq("a");
  echo::EchoRequest b = EchoReq("b");
  out->push_back({"collect",
                  Stream()
                      .Frame(Request(1, kCollect))
                      .Frame(Meta(wire::MESSAGE, 1), &a)
                      .Frame(Meta(wire::MESSAGE, 1), &b)
                      .Frame(Meta(wire::HALF_CLOSE, 1))
                      .bytes()});
  wire::FrameMeta chat = Request(5, kChat);
  chat.set_initial_window(10);
  out->push_back({"chat",
                  Stream()
                      .Frame(chat)
                      .Frame(Meta(wire::MESSAGE, 5), &a)
                      .Frame(grant)
                      .Frame(Meta(wire::MESSAGE, 5), &b)
                      .Frame(Meta(wire::HALF_CLOSE, 5))
                      .bytes()});
  out->push_back({"unknown_method_goaway",
                  Stream()
                      .Frame(Request(1, "bevrpc.echo.Echo/Nope"), &hi)
                      .Frame(Meta(wire::GOAWAY, 0))
                      .bytes()});
  wire::FrameMeta sync_chat = Request(7, "bevrpc.fuzz.Sync/Chat");
  out->push_back({"sync_methods",
                  Stream()
                      .Frame(Request(1, "bevrpc.fuzz.Sync/Echo"), &hi)
                      .Frame(Request(3, "bevrpc.fuzz.Sync/Expand"), &expand)
                      .Frame(sync_chat)
                      .Frame(Meta(wire::MESSAGE, 7), &a)
                      .Frame(Meta(wire::HALF_CLOSE, 7))
                      .bytes()});
  out->push_back({"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"});
  // A header promising a 20 KB payload (over the decoder fuzzer's limit),
  // then part of it.
  std::string big(9000, 'x');
  echo::EchoRequest large = EchoReq(big);
  out->push_back({"large_payload",
                  Stream().Frame(Request(1, kEcho), &large).bytes()});
  std::string oversized = Stream().Frame(Request(1, kEcho), &large).bytes();
  oversized[5] = 0x01;  // body_size += 65536
  out->push_back({"oversized_truncated", oversized.substr(0, 200)});
}

// Streams a server might send to a channel whose calls are: 1 and 2 unary
// Echo, 3 a Chat stream (channel_fuzzer input).
void ServerStreams(std::vector<std::pair<std::string, std::string>>* out) {
  echo::EchoResponse hi = EchoResp("hi");
  out->push_back({"responses",
                  Stream()
                      .Frame(Meta(wire::RESPONSE, 1), &hi)
                      .Frame(Meta(wire::RESPONSE, 2), &hi)
                      .bytes()});
  wire::FrameMeta error = Meta(wire::RESPONSE, 2);
  error.set_status_code(14);
  error.set_status_message("unavailable");
  (*error.mutable_metadata())["retry"] = "no";
  wire::FrameMeta ping = Meta(wire::PING, 0);
  out->push_back({"error_ping",
                  Stream().Frame(ping).Frame(error).bytes()});
  wire::FrameMeta goaway = Meta(wire::GOAWAY, 0);
  goaway.set_last_call_id(1);
  goaway.set_status_code(14);
  out->push_back({"goaway",
                  Stream().Frame(goaway).Frame(Meta(wire::RESPONSE, 1), &hi)
                      .bytes()});
  wire::FrameMeta headers = Meta(wire::HEADERS, 3);
  (*headers.mutable_metadata())["h"] = "v";
  wire::FrameMeta grant = Meta(wire::WINDOW_UPDATE, 3);
  grant.set_window_increment(100);
  wire::FrameMeta trailers = Meta(wire::RESPONSE, 3);
  (*trailers.mutable_metadata())["t"] = "v";
  out->push_back({"stream",
                  Stream()
                      .Frame(headers)
                      .Frame(grant)
                      .Frame(Meta(wire::MESSAGE, 3), &hi)
                      .Frame(Meta(wire::MESSAGE, 3), &hi)
                      .Frame(trailers)
                      .Frame(Meta(wire::RESPONSE, 1), &hi)
                      .bytes()});
  std::string oversized =
      Stream().Frame(Meta(wire::RESPONSE, 1), &hi).bytes();
  oversized[4] = 0x01;  // body_size += 16 MiB
  out->push_back({"oversized_response", oversized});
  out->push_back({"garbage", "HTTP/1.1 400 Bad Request\r\n\r\n"});
}

}  // namespace
}  // namespace bevrpc

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  namespace fs = std::filesystem;
  fs::path root = argv[1];
  std::vector<std::pair<std::string, std::string>> client, server;
  bevrpc::ClientStreams(&client);
  bevrpc::ServerStreams(&server);
  bool ok = true;
  for (const auto& [name, bytes] : client) {
    ok &= bevrpc::Write(root / "server_session_fuzzer", name, bytes);
  }
  for (const auto& [name, bytes] : server) {
    ok &= bevrpc::Write(root / "channel_fuzzer", name, bytes);
  }
  // The decoder's first two bytes pick the chunking and the pauses.
  const std::string prefixes[] = {
      std::string("\0\0", 2), std::string("\1\0", 2), "\2\5",
      std::string("\3\0", 2), "\4\x2a"};
  size_t i = 0;
  for (const auto& streams : {client, server}) {
    for (const auto& [name, bytes] : streams) {
      const std::string& prefix = prefixes[i++ % 5];
      ok &= bevrpc::Write(root / "frame_decoder_fuzzer", name, prefix + bytes);
    }
  }
  if (!ok) {
    std::fprintf(stderr, "make_seeds: cannot write under %s\n", argv[1]);
    return 1;
  }
  std::printf("make_seeds: wrote %zu + %zu + %zu seeds under %s\n",
              client.size(), server.size(), client.size() + server.size(),
              argv[1]);
  return 0;
}
