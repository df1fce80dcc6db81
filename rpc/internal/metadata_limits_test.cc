#include "rpc/internal/metadata_limits.h"

#include <string>

#include "gtest/gtest.h"
#include "rpc/call_options.h"
#include "rpc/wire.pb.h"

namespace bevrpc::internal {
namespace {

TEST(MetadataLimitsTest, CountsKeyValueAndOverheadPerEntry) {
  Metadata m;
  EXPECT_EQ(MetadataBytes(m), 0u);
  m["ab"] = "cde";
  m["x"] = "";
  EXPECT_EQ(MetadataBytes(m), 2 + 3 + 32 + 1 + 0 + 32u);
}

TEST(MetadataLimitsTest, ExactlyAtTheLimitPassesOneByteMoreFails) {
  Metadata m;
  m["key"] = std::string(100, 'v');
  const size_t size = 3 + 100 + kMetadataEntryOverhead;
  EXPECT_TRUE(CheckMetadata(m, size, "request headers",
                            absl::StatusCode::kInvalidArgument)
                  .ok());
  absl::Status s = CheckMetadata(m, size - 1, "request headers",
                                 absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(),
            "request headers of 135 bytes (1 entry, counted as key + value + "
            "32 each) exceed max_metadata_bytes 134");
}

TEST(MetadataLimitsTest, EmptyKeyGetsTheGivenCode) {
  Metadata m;
  m[""] = "v";
  absl::Status s = CheckMetadata(m, 1 << 20, "response trailers",
                                 absl::StatusCode::kInternal);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "response trailers has an entry with an empty key");
}

TEST(MetadataLimitsTest, KeysAreLowerCaseDigitsDashUnderscoreDot) {
  EXPECT_TRUE(IsValidMetadataKey("x-grpc-test-echo-trailing-bin"));
  EXPECT_TRUE(IsValidMetadataKey("a.b_c-0123456789"));
  for (const char* key : {"", "X-Id", "a b", "a:b", "a/b", "caf\xc3\xa9",
                          "\xab\xab", "key\n"}) {
    EXPECT_FALSE(IsValidMetadataKey(key)) << key;
  }
}

TEST(MetadataLimitsTest, InvalidKeyGetsTheGivenCodeAndIsEscaped) {
  Metadata m;
  m["ok"] = "v";
  m["Caf\xe9"] = "v";
  absl::Status s = CheckMetadata(m, 1 << 20, "request headers",
                                 absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "request headers has an invalid key \"Caf\\xe9\" (keys are "
            "lower-case: only a-z, 0-9, '-', '_' and '.')");
  m.erase("Caf\xe9");
  m[std::string(100, 'K')] = "";
  s = CheckMetadata(m, 1 << 20, "response trailers",
                    absl::StatusCode::kInternal);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(), "response trailers has an invalid key \"" +
                             std::string(64, 'K') +
                             "...\" (keys are lower-case: only a-z, 0-9, "
                             "'-', '_' and '.')");
}

TEST(MetadataLimitsTest, ValuesMayBeAnyBytes) {
  Metadata m;
  m["x-probe-bin"] = std::string("\xab\xab\xab\0\n", 5);
  m["x-text"] = "caf\xe9";
  EXPECT_TRUE(CheckMetadata(m, 1 << 20, "request headers",
                            absl::StatusCode::kInvalidArgument)
                  .ok());
}

TEST(MetadataLimitsTest, WorksOnTheWireMap) {
  wire::FrameMeta meta;
  (*meta.mutable_metadata())["a"] = "b";
  (*meta.mutable_metadata())["c"] = "d";
  EXPECT_EQ(MetadataBytes(meta.metadata()), 2 * (1 + 1 + 32u));
  EXPECT_EQ(CheckMetadata(meta.metadata(), 67, "request headers",
                          absl::StatusCode::kInvalidArgument)
                .code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace bevrpc::internal
