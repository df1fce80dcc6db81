// ParseFrameMeta: parses a frame's FrameMeta so that nothing a single call
// carries can fail the whole frame (and so the connection).
//
//   wire::FrameMeta meta;
//   if (!internal::ParseFrameMeta(data, size, &meta)) { /* corrupt: GOAWAY */ }
//
// Method, status message and metadata values are `bytes` in rpc/wire.proto
// and parse whatever they hold. Metadata keys are a map's `string` keys,
// which protobuf refuses when they are not UTF-8: such a key is recovered
// with each invalid byte replaced by U+FFFD, so that the key checks
// (CheckMetadata in metadata_limits.h, which only allow [0-9a-z_.-]) fail
// that one call instead. Rules: docs/protocol.md, "Metadata".
//
// Threading: a pure function; thread-safe. Internal to rpc/.
#ifndef BEVRPC_RPC_INTERNAL_FRAME_META_PARSER_H_
#define BEVRPC_RPC_INTERNAL_FRAME_META_PARSER_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "rpc/wire.pb.h"

namespace bevrpc::internal {

// Fills `meta` from the `size` bytes at `data`; false if they are not a
// FrameMeta even with their metadata keys made valid UTF-8.
bool ParseFrameMeta(const void* data, size_t size, wire::FrameMeta* meta);

// `bytes` (a serialized FrameMeta) with every metadata key made valid UTF-8
// (each byte that is not part of a valid sequence replaced by U+FFFD), or
// nullopt if `bytes` is not well-formed protobuf wire format. Exposed for
// tests.
std::optional<std::string> RepairMetadataKeys(absl::string_view bytes);

// `text` with each byte that is not part of a valid UTF-8 sequence replaced
// by U+FFFD.
std::string ToValidUtf8(absl::string_view text);

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_FRAME_META_PARSER_H_
