// Fuzz target: bevrpc::FrameDecoder fed arbitrary bytes.
//
// Input layout: byte 0 picks how the stream is cut into chunks (one byte at
// a time, or pseudo-random chunks up to 16, 512 or 4096 bytes, seeded by
// byte 0), byte 1 when the sink pauses (WantsFrames() false, as a session
// whose connection is not writable), the rest is the byte stream.
//
// The stream is decoded twice: whole, and chunk by chunk the way a
// Connection delivers it (Decode() only once the input holds the number of
// bytes the previous call asked for). Checked:
//   - Decode() always asks for more than the input holds (else a connection
//     would never call it again) and never for 0;
//   - frames, oversized-frame notices and the error (or none) are the same
//     both ways, whatever the chunking;
//   - every payload is within the limits and within the input; it parses
//     the same in place (ParsePayload: contiguous or chunked stream) as from
//     a flat copy; a PING is answered with a PONG echoing its payload.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/stubs/logging.h"
#include "rpc/frame_codec.h"
#include "rpc/wire.pb.h"
#include "rpc/wire_format.h"
#include "services/echo/echo.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "transport/buffer.h"

namespace bevrpc {
namespace {

// Small limits, so that oversized metas and payloads are reachable.
FrameLimits Limits() {
  FrameLimits limits;
  limits.max_message_bytes = 16 * 1024;  // Above ParsePayload's 8 KiB switch.
  limits.max_meta_bytes = 1024;
  return limits;
}

struct Event {
  wire::FrameMeta meta;
  bool oversized = false;
  uint64_t payload_size = 0;
  std::string payload;  // Whole frames only.
};

class RecordingSink : public FrameSink {
 public:
  explicit RecordingSink(uint8_t pause_pattern) : pause_pattern_(pause_pattern) {}

  void OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
               size_t payload_size) override {
    FUZZ_CHECK(payload_size <= Limits().max_message_bytes,
               "payload " << payload_size << " over the limit");
    FUZZ_CHECK(payload_size <= input.size(),
               "payload " << payload_size << " but input has " << input.size());
    FUZZ_CHECK(meta.kind() != wire::FRAME_KIND_UNSPECIFIED &&
                   wire::FrameKind_IsValid(meta.kind()),
               "frame of kind " << meta.kind() << " delivered");
    std::string flat(payload_size, '\0');
    FUZZ_CHECK(input.Peek(flat.data(), payload_size) == payload_size,
               "short peek");
    CheckParse(input, flat);
    if (meta.kind() == wire::PING) CheckPong(input, flat);
    Event e;
    e.meta = meta;
    e.payload_size = payload_size;
    e.payload = std::move(flat);
    events.push_back(std::move(e));
  }

  void OnOversizedFrame(const wire::FrameMeta& meta,
                        uint64_t payload_size) override {
    FUZZ_CHECK(payload_size > Limits().max_message_bytes,
               "oversized notice for " << payload_size << " bytes");
    Event e;
    e.meta = meta;
    e.oversized = true;
    e.payload_size = payload_size;
    events.push_back(std::move(e));
  }

  bool WantsFrames() override {
    if (pause_pattern_ == 0) return true;
    // Pause on the calls whose bit is set in the pattern, cyclically.
    bool pause = (pause_pattern_ >> (calls_++ % 8)) & 1;
    paused_ = paused_ || pause;
    return !pause;
  }

  // True once since the last call when the sink refused frames.
  bool TakePaused() {
    bool p = paused_;
    paused_ = false;
    return p;
  }

  std::vector<Event> events;

 private:
  static void CheckParse(transport::Buffer& input, const std::string& flat) {
    echo::EchoRequest in_place;
    echo::EchoRequest copied;
    bool ok_in_place = ParsePayload(input, flat.size(), &in_place);
    bool ok_copied = copied.ParseFromString(flat);
    FUZZ_CHECK(ok_in_place == ok_copied,
               "ParsePayload " << ok_in_place << " but a flat copy parses "
                               << ok_copied << " (" << flat.size()
                               << " bytes)");
    if (ok_in_place) {
      FUZZ_CHECK(fuzzing::Deterministic(in_place) == fuzzing::Deterministic(copied),
                 "ParsePayload and a flat copy parse differently");
    }
  }

  static void CheckPong(transport::Buffer& input, const std::string& flat) {
    transport::Buffer out;
    AppendPong(out, input, flat.size());
    std::string bytes = out.TakeString(out.size());
    FUZZ_CHECK(bytes.size() >= wire::kHeaderSize + flat.size(), "short PONG");
    FUZZ_CHECK(bytes.compare(bytes.size() - flat.size(), flat.size(), flat) == 0,
               "PONG does not echo the PING's payload");
  }

  uint8_t pause_pattern_;
  uint32_t calls_ = 0;
  bool paused_ = false;
};

struct Outcome {
  std::vector<Event> events;
  absl::Status status;
};

// Calls Decode() as a Connection would: again at once after the sink
// paused (the connection became writable again), else only once the input
// holds what the decoder asked for.
void DecodeAvailable(FrameDecoder& decoder, transport::Buffer& input,
                     RecordingSink& sink, size_t* wanted, absl::Status* status) {
  while (status->ok() && input.size() >= *wanted) {
    absl::StatusOr<size_t> w = decoder.Decode(input, sink);
    if (!w.ok()) {
      *status = w.status();
      return;
    }
    bool paused = sink.TakePaused();
    FUZZ_CHECK(*w >= 1, "Decode asked for 0 bytes");
    if (!paused) {
      FUZZ_CHECK(*w > input.size(), "Decode asked for " << *w
                                        << " bytes but the input holds "
                                        << input.size());
    }
    *wanted = paused ? 0 : *w;
  }
}

Outcome Run(absl::string_view stream, uint8_t chunking, uint8_t pause_pattern) {
  FrameDecoder decoder(Limits());
  RecordingSink sink(pause_pattern);
  transport::Buffer input;
  Outcome out;
  size_t wanted = 1;
  uint32_t rng = 0x9e3779b9u ^ chunking;
  size_t max_chunk = 0;  // 0: everything at once.
  switch (chunking % 5) {
    case 1: max_chunk = 1; break;
    case 2: max_chunk = 16; break;
    case 3: max_chunk = 512; break;
    case 4: max_chunk = 4096; break;
  }
  size_t pos = 0;
  while (pos < stream.size() && out.status.ok()) {
    size_t n = stream.size() - pos;
    if (max_chunk != 0) {
      rng ^= rng << 13;
      rng ^= rng >> 17;
      rng ^= rng << 5;
      n = std::min<size_t>(n, 1 + rng % max_chunk);
    }
    input.Append(stream.data() + pos, n);
    pos += n;
    DecodeAvailable(decoder, input, sink, &wanted, &out.status);
  }
  out.events = std::move(sink.events);
  return out;
}

void CheckSame(const Outcome& a, const Outcome& b) {
  FUZZ_CHECK(a.status.code() == b.status.code(),
             "whole: " << a.status << "; chunked: " << b.status);
  FUZZ_CHECK(a.events.size() == b.events.size(),
             "whole: " << a.events.size() << " frames; chunked: "
                       << b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) {
    const Event& x = a.events[i];
    const Event& y = b.events[i];
    FUZZ_CHECK(x.oversized == y.oversized && x.payload_size == y.payload_size &&
                   x.payload == y.payload &&
                   google::protobuf::util::MessageDifferencer::Equals(x.meta,
                                                                      y.meta),
               "frame " << i << " differs between whole and chunked input");
  }
}

// A frame decoded whole re-encodes (AppendFrame) to a frame that decodes
// to the same meta and payload.
void CheckReencode(const Event& e) {
  transport::Buffer buf;
  AppendFrame(buf, e.meta, e.payload);
  // Re-serializing may grow a meta (a map entry gains its key and value).
  FrameLimits limits = Limits();
  limits.max_meta_bytes = 1 << 20;
  FrameDecoder decoder(limits);
  RecordingSink sink(0);
  absl::StatusOr<size_t> w = decoder.Decode(buf, sink);
  FUZZ_CHECK(w.ok(), "re-encoded frame does not decode: " << w.status());
  FUZZ_CHECK(sink.events.size() == 1 && sink.events[0].payload == e.payload &&
                 google::protobuf::util::MessageDifferencer::Equals(
                     sink.events[0].meta, e.meta),
             "re-encoded frame decodes differently");
}

}  // namespace
}  // namespace bevrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs every string field with invalid UTF-8: expected here.
  static bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  if (size < 2) return 0;
  uint8_t chunking = data[0];
  // Bit 7 clear: at most 7 pauses in a row, so decoding always goes on.
  uint8_t pause_pattern = data[1] & 0x7f;
  absl::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  bevrpc::Outcome whole = bevrpc::Run(stream, 0, 0);
  bevrpc::Outcome chunked = bevrpc::Run(stream, chunking, pause_pattern);
  bevrpc::CheckSame(whole, chunked);
  for (const bevrpc::Event& e : whole.events) {
    if (!e.oversized) bevrpc::CheckReencode(e);
  }
  return 0;
}
