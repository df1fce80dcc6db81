#include "rpc/internal/frame_meta_parser.h"

#include <string>

#include "gtest/gtest.h"
#include "rpc/wire.pb.h"

namespace bevrpc::internal {
namespace {

// A FrameMeta whose metadata has `key` (any bytes) and "ok" -> "fine", and
// whose other fields are set, serialized by hand: protobuf will not
// serialize a map whose `string` key is not UTF-8 without complaining.
std::string MetaWithKey(const std::string& key, const std::string& value) {
  wire::FrameMeta meta;
  meta.set_call_id(7);
  meta.set_kind(wire::REQUEST);
  meta.set_method("bevrpc.echo.Echo/Echo");
  meta.set_timeout_us(1000);
  meta.set_initial_window(4096);
  (*meta.mutable_metadata())["ok"] = "fine";
  std::string bytes = meta.SerializeAsString();
  // Field 7, length-delimited: an entry {1: key, 2: value}.
  std::string entry;
  entry += '\x0a';
  entry += static_cast<char>(key.size());
  entry += key;
  entry += '\x12';
  entry += static_cast<char>(value.size());
  entry += value;
  bytes += '\x3a';
  bytes += static_cast<char>(entry.size());
  bytes += entry;
  return bytes;
}

TEST(FrameMetaParserTest, BinaryValuesMethodAndStatusMessageParse) {
  wire::FrameMeta meta;
  meta.set_kind(wire::RESPONSE);
  meta.set_method("caf\xe9/\xff");
  meta.set_status_code(2);
  meta.set_status_message("bad file name: caf\xe9.txt");
  (*meta.mutable_metadata())["x-probe-bin"] = "\xab\xab\xab";
  const std::string bytes = meta.SerializeAsString();
  wire::FrameMeta parsed;
  ASSERT_TRUE(ParseFrameMeta(bytes.data(), bytes.size(), &parsed));
  EXPECT_EQ(parsed.method(), "caf\xe9/\xff");
  EXPECT_EQ(parsed.status_message(), "bad file name: caf\xe9.txt");
  EXPECT_EQ(parsed.metadata().at("x-probe-bin"), "\xab\xab\xab");
}

TEST(FrameMetaParserTest, KeyThatIsNotUtf8IsRecoveredWithReplacements) {
  const std::string bytes = MetaWithKey("caf\xe9-\xab", "\xab\xab");
  wire::FrameMeta plain;
  // Protobuf itself refuses it (and logs why): the frame would be lost.
  EXPECT_FALSE(plain.ParseFromString(bytes));
  wire::FrameMeta meta;
  ASSERT_TRUE(ParseFrameMeta(bytes.data(), bytes.size(), &meta));
  EXPECT_EQ(meta.call_id(), 7u);
  EXPECT_EQ(meta.kind(), wire::REQUEST);
  EXPECT_EQ(meta.method(), "bevrpc.echo.Echo/Echo");
  EXPECT_EQ(meta.timeout_us(), 1000u);
  EXPECT_EQ(meta.initial_window(), 4096u);
  ASSERT_EQ(meta.metadata().size(), 2u);
  EXPECT_EQ(meta.metadata().at("ok"), "fine");
  EXPECT_EQ(meta.metadata().at("caf\xEF\xBF\xBD-\xEF\xBF\xBD"), "\xab\xab");
}

TEST(FrameMetaParserTest, MalformedBytesStillFail) {
  wire::FrameMeta meta;
  for (const std::string& bytes :
       {std::string("\x3a\x05\x0a", 3), std::string("\xff\xff\xff", 3),
        std::string("\x3a\x02\x0a\x05", 4)}) {
    EXPECT_FALSE(ParseFrameMeta(bytes.data(), bytes.size(), &meta));
    EXPECT_FALSE(RepairMetadataKeys(bytes).has_value() &&
                 meta.ParseFromString(*RepairMetadataKeys(bytes)));
  }
}

TEST(FrameMetaParserTest, ToValidUtf8KeepsValidTextAndReplacesBadBytes) {
  EXPECT_EQ(ToValidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(ToValidUtf8("a\xe9z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(ToValidUtf8("\xc3"), "\xEF\xBF\xBD");
  EXPECT_EQ(ToValidUtf8(""), "");
}

}  // namespace
}  // namespace bevrpc::internal
