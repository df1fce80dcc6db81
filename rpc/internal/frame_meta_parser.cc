#include "rpc/internal/frame_meta_parser.h"

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/wire_format_lite.h"

namespace bevrpc::internal {
namespace {

using ::google::protobuf::internal::WireFormatLite;

// FrameMeta.metadata, and the key of its map entries.
constexpr int kMetadataField = 7;
constexpr int kMapKeyField = 1;

// `bytes` (protobuf wire format) with the value of every length-delimited
// field numbered `field` replaced by `rewrite(value)`, and every other field
// copied unchanged; nullopt if `bytes` is malformed or `rewrite` fails.
std::optional<std::string> RewriteField(
    absl::string_view bytes, int field,
    absl::FunctionRef<std::optional<std::string>(absl::string_view)> rewrite) {
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(bytes.data()),
      static_cast<int>(bytes.size()));
  std::string out;
  {
    google::protobuf::io::StringOutputStream sink(&out);
    google::protobuf::io::CodedOutputStream writer(&sink);
    while (!in.ExpectAtEnd()) {
      const uint32_t tag = in.ReadTag();
      if (tag == 0) return std::nullopt;
      if (WireFormatLite::GetTagFieldNumber(tag) != field ||
          WireFormatLite::GetTagWireType(tag) !=
              WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
        if (!WireFormatLite::SkipField(&in, tag, &writer)) return std::nullopt;
        continue;
      }
      uint32_t length = 0;
      std::string value;
      if (!in.ReadVarint32(&length) ||
          !in.ReadString(&value, static_cast<int>(length))) {
        return std::nullopt;
      }
      std::optional<std::string> rewritten = rewrite(value);
      if (!rewritten.has_value()) return std::nullopt;
      writer.WriteTag(tag);
      writer.WriteVarint32(static_cast<uint32_t>(rewritten->size()));
      writer.WriteString(*rewritten);
    }
  }
  return out;
}

}  // namespace

std::string ToValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const int valid = google::protobuf::internal::UTF8SpnStructurallyValid(
        google::protobuf::StringPiece(text.data(), text.size()));
    out.append(text.data(), valid);
    text.remove_prefix(valid);
    if (!text.empty()) {
      out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      text.remove_prefix(1);
    }
  }
  return out;
}

std::optional<std::string> RepairMetadataKeys(absl::string_view bytes) {
  return RewriteField(bytes, kMetadataField, [](absl::string_view entry) {
    return RewriteField(entry, kMapKeyField, [](absl::string_view key) {
      return std::optional<std::string>(ToValidUtf8(key));
    });
  });
}

bool ParseFrameMeta(const void* data, size_t size, wire::FrameMeta* meta) {
  if (meta->ParseFromArray(data, static_cast<int>(size))) return true;
  // The one `string` left in FrameMeta is the metadata key: a key that is
  // not UTF-8 must fail its call, not the frame.
  std::optional<std::string> repaired = RepairMetadataKeys(
      absl::string_view(static_cast<const char*>(data), size));
  return repaired.has_value() && meta->ParseFromString(*repaired);
}

}  // namespace bevrpc::internal
