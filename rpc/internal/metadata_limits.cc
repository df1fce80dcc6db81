#include "rpc/internal/metadata_limits.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace bevrpc::internal {

absl::Status MetadataTooLarge(absl::string_view what, size_t bytes,
                              size_t entries, size_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " of ", bytes, " bytes (", entries,
      entries == 1 ? " entry" : " entries", ", counted as key + value + ",
      kMetadataEntryOverhead, " each) exceed max_metadata_bytes ", limit));
}

absl::Status EmptyMetadataKey(absl::string_view what, absl::StatusCode code) {
  return absl::Status(code,
                      absl::StrCat(what, " has an entry with an empty key"));
}

absl::Status InvalidMetadataKey(absl::string_view what, absl::string_view key,
                                absl::StatusCode code) {
  constexpr size_t kShown = 64;
  const bool cut = key.size() > kShown;
  return absl::Status(
      code, absl::StrCat(what, " has an invalid key \"",
                         absl::CHexEscape(key.substr(0, kShown)),
                         cut ? "...\"" : "\"",
                         " (keys are lower-case: only a-z, 0-9, '-', '_' "
                         "and '.')"));
}

}  // namespace bevrpc::internal
