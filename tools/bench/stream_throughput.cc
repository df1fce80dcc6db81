// stream_throughput: server-streaming throughput of a running echo_server.
//
//   stream_throughput --port=P [--host=127.0.0.1] [--size=64] [--seconds=3]
//                     [--warmup=0.5] [--window=65536]
//
// Opens one bevrpc.echo.Echo/Expand stream (an effectively endless count of
// `--size`-byte messages), reads as fast as it can, and prints one line:
//
//   {"size":64,"seconds":3.00,"messages":...,"messages_per_sec":...,
//    "bytes_per_sec":...}
//
// Bytes are message payload bytes (the `message` field), not wire bytes.
// The stream is flow-controlled end to end, so this measures the whole path
// (the server's writes, credit round trips, the client's reads). The run is
// bounded by --seconds; the stream is cancelled at the end.
#include <cstdint>
#include <cstdio>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "services/echo/echo.bevrpc.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "the server's address");
ABSL_FLAG(int, port, 0, "the server's port");
ABSL_FLAG(uint32_t, size, 64, "bytes per message");
ABSL_FLAG(double, seconds, 3, "measured time");
ABSL_FLAG(double, warmup, 0.5, "unmeasured time first");
ABSL_FLAG(uint32_t, window, 64 * 1024,
          "the client's receive window per stream, in bytes");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_port) <= 0 || absl::GetFlag(FLAGS_seconds) <= 0 ||
      absl::GetFlag(FLAGS_seconds) > 600) {
    std::fprintf(stderr, "usage: stream_throughput --port=P [--size=BYTES] "
                         "[--seconds=S (0 < S <= 600)]\n");
    return 2;
  }
  bevrpc::ChannelOptions options;
  options.stream_window_bytes = absl::GetFlag(FLAGS_window);
  auto channel = bevrpc::Channel::Create(
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port)),
      options);
  if (!channel.ok()) {
    std::fprintf(stderr, "stream_throughput: %s\n",
                 channel.status().ToString().c_str());
    return 1;
  }
  bevrpc::echo::Echo::Stub stub(channel->get());
  bevrpc::echo::ExpandRequest request;
  request.set_count(UINT64_MAX);
  request.set_size(absl::GetFlag(FLAGS_size));
  auto stream = stub.Expand(request);
  bevrpc::echo::EchoResponse response;

  const absl::Time warm_end =
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_warmup));
  while (absl::Now() < warm_end && stream->Read(&response)) {
  }
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  int64_t messages = 0;
  int64_t bytes = 0;
  // Checking the clock every 256 messages keeps it off the profile.
  while (stream->Read(&response)) {
    ++messages;
    bytes += static_cast<int64_t>(response.message().size());
    if ((messages & 255) == 0 && absl::Now() >= end) break;
  }
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  stream->Cancel();
  absl::Status status = stream->Finish();
  if (messages == 0 || (!status.ok() &&
                        status.code() != absl::StatusCode::kCancelled)) {
    std::fprintf(stderr, "stream_throughput: stream failed: %s\n",
                 status.ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"size\":%u,\"window\":%u,\"seconds\":%.2f,\"messages\":%lld,"
      "\"messages_per_sec\":%.0f,\"bytes_per_sec\":%.0f}\n",
      absl::GetFlag(FLAGS_size), absl::GetFlag(FLAGS_window), elapsed,
      static_cast<long long>(messages),
      messages / elapsed, bytes / elapsed);
  return 0;
}
