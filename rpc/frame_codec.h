// Frame codec for wire protocol v1: an incremental decoder that reads frames
// straight from a connection's input buffer, and the encoder that writes a
// whole frame (header, meta, payload) with a single reservation.
//
//   FrameDecoder decoder(limits);
//   size_t OnReadable(transport::Buffer& in) {        // ConnectionHandler
//     absl::StatusOr<size_t> wanted = decoder.Decode(in, sink);
//     if (!wanted.ok()) { /* GOAWAY with wanted.status(), then close */ }
//     return *wanted;                                  // -> read low watermark
//   }
//
//   AppendFrame(out, meta, &response);  // one contiguous write
//
// Limits are checked from the header, before anything is buffered: a payload
// over max_message_bytes is reported once and then discarded as it arrives.
// Not thread-safe; a decoder belongs to one connection's loop thread.
#ifndef BEVRPC_RPC_FRAME_CODEC_H_
#define BEVRPC_RPC_FRAME_CODEC_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"
#include "rpc/wire.pb.h"
#include "rpc/wire_format.h"
#include "transport/buffer.h"

namespace bevrpc {

// Size limits, per server and per channel.
struct FrameLimits {
  // Largest payload (serialized message) accepted or sent. Default: 4 MiB.
  size_t max_message_bytes = 4 * 1024 * 1024;
  // Largest FrameMeta accepted. Default: 16 KiB.
  size_t max_meta_bytes = 16 * 1024;
  // Longest "package.Service/Method" name accepted. Default: 256.
  size_t max_method_bytes = 256;
  // Largest metadata map accepted or sent: request headers, a stream's
  // initial headers, response trailers. Counted as HTTP/2 counts a header
  // list: key + value + 32 bytes per entry, so many tiny entries cannot
  // cost far more memory than the limit suggests. Oversized metadata fails
  // the call with RESOURCE_EXHAUSTED (docs/protocol.md, "Limits"); keep it
  // below max_meta_bytes, since a larger FrameMeta is already a connection
  // error. Default: 8 KiB (gRPC's default max metadata size).
  size_t max_metadata_bytes = 8 * 1024;
};

// Checks that `limits` can be honoured by the wire format: a frame's
// body_size (meta + payload) is a 32-bit field. INVALID_ARGUMENT naming the
// field otherwise. Servers and channels call it when they are created.
absl::Status ValidateFrameLimits(const FrameLimits& limits);

// Receives decoded frames. Called on the decoder's thread.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A whole frame. Its payload is the first `payload_size` bytes of `input`;
  // read them in place (transport::BufferInputStream) but do not drain them:
  // the decoder does that after this returns. `meta` may be modified.
  virtual void OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
                       size_t payload_size) = 0;
  // A frame whose payload exceeds max_message_bytes. Its payload is being
  // discarded as it arrives and will never be delivered.
  virtual void OnOversizedFrame(const wire::FrameMeta& meta,
                                uint64_t payload_size) = 0;
  // Whether the sink wants more frames now (false when it is over its
  // memory budget or closing). Decoding stops between frames while false.
  virtual bool WantsFrames() { return true; }
};

class FrameDecoder {
 public:
  explicit FrameDecoder(const FrameLimits& limits) : limits_(limits) {}

  // Decodes every whole frame in `input` into `sink`. Returns the total
  // number of bytes `input` must hold before the next call can make progress
  // (the read low watermark), or an error for a malformed stream, after which
  // the connection must be closed (send GOAWAY with the status first).
  absl::StatusOr<size_t> Decode(transport::Buffer& input, FrameSink& sink);

  // True while a frame has been started but not finished.
  bool mid_frame() const { return state_ != State::kHeader; }

 private:
  enum class State { kHeader, kBody, kOversizedMeta, kDiscard };

  absl::StatusOr<size_t> DecodeHeader(transport::Buffer& input);
  absl::Status ParseMeta(transport::Buffer& input);

  FrameLimits limits_;
  State state_ = State::kHeader;
  wire::FrameHeader header_{};
  uint64_t discard_left_ = 0;
  wire::FrameMeta meta_;
};

// Appends one frame to `out`: header, `meta`, then `payload` serialized
// (null = empty payload). One contiguous reservation, no intermediate copy.
void AppendFrame(transport::Buffer& out, const wire::FrameMeta& meta,
                 const google::protobuf::MessageLite* payload);
// Same with a payload that is already bytes.
void AppendFrame(transport::Buffer& out, const wire::FrameMeta& meta,
                 absl::string_view payload);

// Appends a PING whose payload is `counter` as 8 bytes, big-endian, so
// that the PONG echoing it can be matched (keepalive).
void AppendPing(transport::Buffer& out, uint64_t counter);

// Appends the PONG answering a PING whose payload is the first
// `payload_size` bytes of `input` (not drained). Both sides answer alike.
void AppendPong(transport::Buffer& out, transport::Buffer& input,
                size_t payload_size);

// Parses the first `size` bytes of `input` (without draining them) into
// `message`: in place from one block when they are small, else through a
// stream over the buffer's chunks, so large payloads are copied once.
bool ParsePayload(transport::Buffer& input, size_t size,
                  google::protobuf::MessageLite* message);

// "REQUEST", "GOAWAY", ... or the number for unknown kinds.
std::string FrameKindName(int kind);

}  // namespace bevrpc

#endif  // BEVRPC_RPC_FRAME_CODEC_H_
