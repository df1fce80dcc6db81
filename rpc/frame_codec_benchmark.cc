// Microbenchmarks of the frame codec (rpc/frame_codec.h) on its own, with no
// sockets or threads: encoding a REQUEST frame into a transport::Buffer,
// decoding batches of whole frames into a sink that parses each payload, and
// decoding a frame that arrives in two halves.
//
//   bazel build -c opt //rpc:frame_codec_benchmark
//   bazel-bin/rpc/frame_codec_benchmark                  # everything, ~10 s
//   bazel-bin/rpc/frame_codec_benchmark --benchmark_filter=Decode
//
// Payloads are EchoRequest messages whose `message` holds `message_bytes`
// bytes (64 B and 64 KiB, the sizes of docs/performance.md's scenarios).
// bytes_per_second counts whole frames (header + meta + payload); items are
// frames. A Buffer cannot reference outside memory, so the decode benchmarks
// copy their input into the buffer inside the timed loop; BM_RefillOnly times
// that copy (and the drain) alone, to subtract. This machine is noisy:
// compare figures from one run only.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "benchmark/benchmark.h"
#include "rpc/frame_codec.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.pb.h"
#include "transport/buffer.h"

namespace bevrpc {
namespace {

constexpr char kEchoMethod[] = "bevrpc.echo.Echo/Echo";

echo::EchoRequest MakeRequest(int64_t message_bytes) {
  echo::EchoRequest request;
  request.set_message(std::string(message_bytes, 'x'));
  return request;
}

wire::FrameMeta MakeRequestMeta(uint64_t call_id) {
  wire::FrameMeta meta;
  meta.set_call_id(call_id);
  meta.set_kind(wire::REQUEST);
  meta.set_method(kEchoMethod);
  return meta;
}

// `count` REQUEST frames with consecutive call ids, as bytes.
std::string EncodeFrames(int64_t count, const echo::EchoRequest& request) {
  transport::Buffer buffer;
  for (int64_t i = 0; i < count; ++i) {
    AppendFrame(buffer, MakeRequestMeta(i + 1), &request);
  }
  return buffer.TakeString(buffer.size());
}

// Parses every payload into one reused EchoRequest, as a dispatcher would
// before calling the handler.
class ParsingSink : public FrameSink {
 public:
  void OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
               size_t payload_size) override {
    if (ParsePayload(input, payload_size, &request_)) {
      ++frames_;
    } else {
      ++errors_;
    }
  }
  void OnOversizedFrame(const wire::FrameMeta& meta,
                        uint64_t payload_size) override {
    ++errors_;
  }

  int64_t frames() const { return frames_; }
  int64_t errors() const { return errors_; }

 private:
  echo::EchoRequest request_;
  int64_t frames_ = 0;
  int64_t errors_ = 0;
};

// Decodes what `input` holds; on a decoder error, a payload that does not
// parse, or a frame left half-decoded, marks the run failed and returns
// false.
bool DecodeAll(benchmark::State& state, FrameDecoder& decoder,
               transport::Buffer& input, ParsingSink& sink) {
  absl::StatusOr<size_t> wanted = decoder.Decode(input, sink);
  if (!wanted.ok()) {
    state.SkipWithError(wanted.status().ToString().c_str());
    return false;
  }
  if (sink.errors() != 0 || decoder.mid_frame() || !input.empty()) {
    state.SkipWithError("a payload did not parse or a frame was left over");
    return false;
  }
  return true;
}

// AppendFrame of one REQUEST frame (meta and payload sized and serialized
// straight into the buffer's reservation), then a drain, as a connection's
// output is emptied by each write.
void BM_EncodeRequest(benchmark::State& state) {
  const echo::EchoRequest request = MakeRequest(state.range(0));
  wire::FrameMeta meta = MakeRequestMeta(0);
  transport::Buffer out;
  uint64_t call_id = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    meta.set_call_id(++call_id);
    AppendFrame(out, meta, &request);
    bytes += out.size();
    out.Drain(out.size());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRequest)->ArgName("message_bytes")->Arg(64)->Arg(64 << 10);

// `frames` whole frames arrive at once (one read) and are all decoded and
// parsed by one Decode() call.
void BM_DecodeWholeFrames(benchmark::State& state) {
  const int64_t frames = state.range(0);
  const std::string batch = EncodeFrames(frames, MakeRequest(state.range(1)));
  FrameDecoder decoder(FrameLimits{});
  ParsingSink sink;
  transport::Buffer input;
  for (auto _ : state) {
    input.Append(batch);
    if (!DecodeAll(state, decoder, input, sink)) break;
  }
  state.SetBytesProcessed(state.iterations() * batch.size());
  state.SetItemsProcessed(sink.frames());
}
BENCHMARK(BM_DecodeWholeFrames)
    ->ArgNames({"frames", "message_bytes"})
    ->ArgsProduct({{1, 64}, {64, 64 << 10}});

// One frame arrives in two halves: the first Decode() consumes the header
// and asks for the body, the second delivers the frame.
void BM_DecodeSplitFrame(benchmark::State& state) {
  const std::string frame = EncodeFrames(1, MakeRequest(state.range(0)));
  const absl::string_view first_half =
      absl::string_view(frame).substr(0, frame.size() / 2);
  const absl::string_view second_half =
      absl::string_view(frame).substr(first_half.size());
  FrameDecoder decoder(FrameLimits{});
  ParsingSink sink;
  transport::Buffer input;
  for (auto _ : state) {
    input.Append(first_half);
    absl::StatusOr<size_t> wanted = decoder.Decode(input, sink);
    if (!wanted.ok() || !decoder.mid_frame()) {
      state.SkipWithError("the first half did not leave a frame pending");
      break;
    }
    input.Append(second_half);
    if (!DecodeAll(state, decoder, input, sink)) break;
  }
  state.SetBytesProcessed(state.iterations() * frame.size());
  state.SetItemsProcessed(sink.frames());
}
BENCHMARK(BM_DecodeSplitFrame)
    ->ArgName("message_bytes")
    ->Arg(64)
    ->Arg(64 << 10);

// Baseline for the decode benchmarks: only the copy of the same input into
// the buffer and its drain, no decoding.
void BM_RefillOnly(benchmark::State& state) {
  const std::string batch =
      EncodeFrames(state.range(0), MakeRequest(state.range(1)));
  transport::Buffer input;
  for (auto _ : state) {
    input.Append(batch);
    input.Drain(input.size());
  }
  state.SetBytesProcessed(state.iterations() * batch.size());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RefillOnly)
    ->ArgNames({"frames", "message_bytes"})
    ->ArgsProduct({{1, 64}, {64, 64 << 10}});

}  // namespace
}  // namespace bevrpc
