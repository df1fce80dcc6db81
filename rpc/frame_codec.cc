#include "rpc/frame_codec.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "rpc/internal/frame_meta_parser.h"
#include "rpc/wire_format.h"

namespace bevrpc {
namespace {

// Discarded payload is drained in chunks of at most this size.
constexpr size_t kDiscardChunk = 64 * 1024;

// Payloads up to this size are parsed from one contiguous block (at worst a
// small copy); larger ones through a stream over the chunks.
constexpr size_t kContiguousParseLimit = 8 * 1024;

}  // namespace

absl::Status ValidateFrameLimits(const FrameLimits& limits) {
  constexpr uint64_t kMaxBody = 0xffffffffu;  // body_size is 32 bits.
  if (limits.max_meta_bytes > kMaxBody) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_meta_bytes ", limits.max_meta_bytes,
                     " exceeds what a frame header can carry (", kMaxBody,
                     " bytes)"));
  }
  if (limits.max_message_bytes > kMaxBody - limits.max_meta_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_message_bytes ", limits.max_message_bytes, " plus max_meta_bytes ",
        limits.max_meta_bytes, " exceeds what a frame header can carry (",
        kMaxBody, " bytes of body)"));
  }
  return absl::OkStatus();
}

std::string FrameKindName(int kind) {
  if (wire::FrameKind_IsValid(kind)) {
    return wire::FrameKind_Name(static_cast<wire::FrameKind>(kind));
  }
  return absl::StrCat(kind);
}

absl::StatusOr<size_t> FrameDecoder::Decode(transport::Buffer& input,
                                            FrameSink& sink) {
  while (true) {
    switch (state_) {
      case State::kHeader: {
        if (!sink.WantsFrames()) return wire::kHeaderSize;
        absl::StatusOr<size_t> wanted = DecodeHeader(input);
        if (!wanted.ok() || *wanted != 0) return wanted;
        break;
      }
      case State::kBody: {
        if (input.size() < header_.body_size) return header_.body_size;
        absl::Status s = ParseMeta(input);
        if (!s.ok()) return s;
        size_t payload_size = header_.body_size - header_.meta_size;
        state_ = State::kHeader;
        sink.OnFrame(meta_, input, payload_size);
        input.Drain(payload_size);
        break;
      }
      case State::kOversizedMeta: {
        if (input.size() < header_.meta_size) return header_.meta_size;
        absl::Status s = ParseMeta(input);
        if (!s.ok()) return s;
        state_ = State::kDiscard;
        sink.OnOversizedFrame(meta_, discard_left_);
        break;
      }
      case State::kDiscard: {
        size_t n = std::min<uint64_t>(discard_left_, input.size());
        input.Drain(n);
        discard_left_ -= n;
        if (discard_left_ != 0) {
          return std::min<uint64_t>(discard_left_, kDiscardChunk);
        }
        state_ = State::kHeader;
        break;
      }
    }
  }
}

// Returns 0 once a header is consumed (state_ advanced), or the bytes needed.
absl::StatusOr<size_t> FrameDecoder::DecodeHeader(transport::Buffer& input) {
  char h[wire::kHeaderSize];
  size_t have = input.Peek(h, sizeof(h));
  // Check the magic byte by byte, so that a peer speaking another protocol
  // (HTTP, TLS) is told at once, without waiting for a whole header.
  size_t magic_have = std::min(have, wire::kMagicSize);
  if (std::memcmp(h, wire::kMagic, magic_have) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad frame magic \"", absl::CHexEscape(absl::string_view(h, magic_have)),
        "\": expected \"BEVR\" (is the peer speaking bevrpc wire protocol v1?)"));
  }
  if (have < wire::kMagicSize) return have + 1;
  if (have < wire::kHeaderSize) return wire::kHeaderSize;
  header_.body_size = wire::GetBigEndian32(h + 4);
  header_.meta_size = wire::GetBigEndian32(h + 8);
  if (header_.meta_size > header_.body_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame meta_size ", header_.meta_size,
                     " exceeds body_size ", header_.body_size));
  }
  if (header_.meta_size > limits_.max_meta_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame meta_size ", header_.meta_size,
                     " exceeds max_meta_bytes ", limits_.max_meta_bytes));
  }
  input.Drain(wire::kHeaderSize);
  uint64_t payload_size = header_.body_size - header_.meta_size;
  if (payload_size <= limits_.max_message_bytes) {
    state_ = State::kBody;
  } else {
    // Oversized: read only the meta (to learn the call), then discard.
    state_ = State::kOversizedMeta;
    discard_left_ = payload_size;
  }
  return 0;
}

void AppendPing(transport::Buffer& out, uint64_t counter) {
  wire::FrameMeta meta;
  meta.set_kind(wire::PING);
  char payload[8];
  wire::PutBigEndian32(static_cast<uint32_t>(counter >> 32), payload);
  wire::PutBigEndian32(static_cast<uint32_t>(counter), payload + 4);
  AppendFrame(out, meta, absl::string_view(payload, sizeof(payload)));
}

void AppendPong(transport::Buffer& out, transport::Buffer& input,
                size_t payload_size) {
  wire::FrameMeta meta;
  meta.set_kind(wire::PONG);
  const char* payload = payload_size == 0 ? "" : input.Contiguous(payload_size);
  AppendFrame(out, meta, absl::string_view(payload, payload_size));
}

bool ParsePayload(transport::Buffer& input, size_t size,
                  google::protobuf::MessageLite* message) {
  if (size <= kContiguousParseLimit) {
    return message->ParseFromArray(input.Contiguous(size),
                                   static_cast<int>(size));
  }
  transport::BufferInputStream stream(input, size);
  return message->ParseFromZeroCopyStream(&stream);
}

absl::Status FrameDecoder::ParseMeta(transport::Buffer& input) {
  // Metas are small (max_meta_bytes): parse them in place.
  if (!internal::ParseFrameMeta(input.Contiguous(header_.meta_size),
                               header_.meta_size, &meta_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "frame meta (", header_.meta_size,
        " bytes) does not parse as bevrpc.wire.FrameMeta"));
  }
  input.Drain(header_.meta_size);
  int kind = meta_.kind();
  if (kind == wire::FRAME_KIND_UNSPECIFIED || !wire::FrameKind_IsValid(kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "frame kind ", kind,
        kind == 0 ? " (FRAME_KIND_UNSPECIFIED) is invalid" : " is unknown"));
  }
  return absl::OkStatus();
}

void AppendFrame(transport::Buffer& out, const wire::FrameMeta& meta,
                 const google::protobuf::MessageLite* payload) {
  size_t meta_size = meta.ByteSizeLong();
  size_t payload_size = payload == nullptr ? 0 : payload->ByteSizeLong();
  size_t total = wire::kHeaderSize + meta_size + payload_size;
  char* p = out.Reserve(total);
  wire::EncodeHeader(
      {static_cast<uint32_t>(meta_size + payload_size),
       static_cast<uint32_t>(meta_size)},
      p);
  uint8_t* q = reinterpret_cast<uint8_t*>(p + wire::kHeaderSize);
  q = meta.SerializeWithCachedSizesToArray(q);
  if (payload != nullptr) payload->SerializeWithCachedSizesToArray(q);
  out.Commit(total);
}

void AppendFrame(transport::Buffer& out, const wire::FrameMeta& meta,
                 absl::string_view payload) {
  size_t meta_size = meta.ByteSizeLong();
  size_t total = wire::kHeaderSize + meta_size + payload.size();
  char* p = out.Reserve(total);
  wire::EncodeHeader(
      {static_cast<uint32_t>(meta_size + payload.size()),
       static_cast<uint32_t>(meta_size)},
      p);
  uint8_t* q = reinterpret_cast<uint8_t*>(p + wire::kHeaderSize);
  q = meta.SerializeWithCachedSizesToArray(q);
  if (!payload.empty()) std::memcpy(q, payload.data(), payload.size());
  out.Commit(total);
}

}  // namespace bevrpc
