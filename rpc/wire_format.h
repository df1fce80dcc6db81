// Wire protocol v1 constants: the 12-byte frame header, the initial
// stream window and the pushback trailer's key. Nothing else lives here; FrameMeta is in wire.proto and the full description in
// docs/protocol.md.
//
//   offset 0  4 bytes  magic "BEVR"
//   offset 4  4 bytes  body_size, big-endian: meta bytes + payload bytes
//   offset 8  4 bytes  meta_size, big-endian: <= body_size
#ifndef BEVRPC_RPC_WIRE_FORMAT_H_
#define BEVRPC_RPC_WIRE_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace bevrpc::wire {

inline constexpr char kMagic[4] = {'B', 'E', 'V', 'R'};
inline constexpr size_t kMagicSize = 4;
inline constexpr size_t kHeaderSize = 12;
// Each direction of a streaming call starts with this much MESSAGE credit
// unless the REQUEST says otherwise (FrameMeta.initial_window).
inline constexpr uint32_t kInitialStreamWindow = 65536;
// Every MESSAGE costs its payload size plus this much stream credit, so
// that empty messages are not free: a receiver that reads nothing holds at
// most a window's worth of them (HTTP/2 + gRPC charge 14 bytes of framing
// per message likewise).
inline constexpr uint32_t kMessageCreditOverhead = 16;

// Response trailer of a call refused for overload: milliseconds after
// which the client may retry the call on another endpoint ("0": at once);
// negative or absent: do not retry because of it. gRPC's
// grpc-retry-pushback-ms, under bevrpc's name (docs/protocol.md,
// "Pushback").
inline constexpr char kRetryPushbackMsKey[] = "bevrpc-retry-pushback-ms";
// Request header on a retried call: attempts made before this one ("1",
// "2", ...), like gRPC's grpc-previous-rpc-attempts.
inline constexpr char kPreviousAttemptsKey[] = "bevrpc-previous-attempts";

struct FrameHeader {
  uint32_t body_size;
  uint32_t meta_size;
};

inline void PutBigEndian32(uint32_t v, char* p) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

inline uint32_t GetBigEndian32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
         (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

// Writes the 12-byte header to p.
inline void EncodeHeader(const FrameHeader& h, char* p) {
  for (size_t i = 0; i < kMagicSize; ++i) p[i] = kMagic[i];
  PutBigEndian32(h.body_size, p + 4);
  PutBigEndian32(h.meta_size, p + 8);
}

}  // namespace bevrpc::wire

#endif  // BEVRPC_RPC_WIRE_FORMAT_H_
