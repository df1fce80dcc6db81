// Metadata limits: how big a metadata map (request headers, a stream's
// initial headers, response trailers) counts against
// FrameLimits::max_metadata_bytes, which keys are allowed, and the one check
// every path applies to what it sends and what it receives. Rules:
// docs/protocol.md, "Limits" and "Metadata".
// Internal to rpc/.
//
//   absl::Status s = CheckMetadata(meta.metadata(), limits.max_metadata_bytes,
//                                  "request headers",
//                                  absl::StatusCode::kInvalidArgument);
//   if (!s.ok()) { /* fail the call with s; the handler is never called */ }
//
// Threading: pure functions; thread-safe.
#ifndef BEVRPC_RPC_INTERNAL_METADATA_LIMITS_H_
#define BEVRPC_RPC_INTERNAL_METADATA_LIMITS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bevrpc::internal {

// Bytes each entry costs on top of its key and value: HTTP/2's rule for
// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113, 6.5.2), so that a map of many
// tiny entries is charged roughly what it costs in memory.
inline constexpr size_t kMetadataEntryOverhead = 32;

// The size of `metadata` as counted against max_metadata_bytes: the sum of
// key + value + kMetadataEntryOverhead over its entries. Works for
// bevrpc::Metadata and for FrameMeta's protobuf map.
template <typename Map>
size_t MetadataBytes(const Map& metadata) {
  size_t bytes = 0;
  for (const auto& [key, value] : metadata) {
    bytes += key.size() + value.size() + kMetadataEntryOverhead;
  }
  return bytes;
}

// "WHAT of N bytes (E entries, counted as key + value + 32 each) exceed
// max_metadata_bytes LIMIT", RESOURCE_EXHAUSTED.
absl::Status MetadataTooLarge(absl::string_view what, size_t bytes,
                              size_t entries, size_t limit);
// "WHAT has an entry with an empty key", with `code`.
absl::Status EmptyMetadataKey(absl::string_view what, absl::StatusCode code);
// "WHAT has an invalid key "KEY" (allowed: ...)", with `code`; KEY escaped
// and cut to 64 bytes.
absl::Status InvalidMetadataKey(absl::string_view what, absl::string_view key,
                                absl::StatusCode code);

// gRPC's rule for metadata keys (the HTTP/2 header names it allows): only
// lower-case letters, digits, '-', '_' and '.'. (Emptiness is checked
// separately, for its own message.) Keys ending in "-bin" carry binary
// values by convention; values are any bytes whatever the key.
inline bool IsValidMetadataKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}
inline bool IsValidMetadataKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!IsValidMetadataKeyChar(c)) return false;
  }
  return true;
}

// OK when `metadata` is at most `limit` bytes (MetadataBytes) and every key
// is valid (IsValidMetadataKey). Otherwise RESOURCE_EXHAUSTED naming
// `what`, the size and the limit, or `bad_key_code` for an empty or invalid
// key (INVALID_ARGUMENT for what a caller sent, INTERNAL for what a handler
// or a server produced).
template <typename Map>
absl::Status CheckMetadata(const Map& metadata, size_t limit,
                           absl::string_view what,
                           absl::StatusCode bad_key_code) {
  size_t bytes = 0;
  for (const auto& [key, value] : metadata) {
    if (key.empty()) return EmptyMetadataKey(what, bad_key_code);
    if (!IsValidMetadataKey(key)) {
      return InvalidMetadataKey(what, key, bad_key_code);
    }
    bytes += key.size() + value.size() + kMetadataEntryOverhead;
  }
  if (bytes > limit) {
    return MetadataTooLarge(what, bytes, metadata.size(), limit);
  }
  return absl::OkStatus();
}

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_METADATA_LIMITS_H_
