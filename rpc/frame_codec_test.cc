#include "rpc/frame_codec.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rpc/wire_format.h"

namespace bevrpc {
namespace {

struct Seen {
  wire::FrameMeta meta;
  std::string payload;
  bool oversized = false;
  uint64_t oversized_size = 0;
};

class RecordingSink : public FrameSink {
 public:
  void OnFrame(wire::FrameMeta& meta, transport::Buffer& input,
               size_t payload_size) override {
    Seen s;
    s.meta = meta;
    s.payload.resize(payload_size);
    input.Peek(s.payload.data(), payload_size);
    frames.push_back(s);
  }
  void OnOversizedFrame(const wire::FrameMeta& meta,
                        uint64_t payload_size) override {
    Seen s;
    s.meta = meta;
    s.oversized = true;
    s.oversized_size = payload_size;
    frames.push_back(s);
  }
  std::vector<Seen> frames;
};

std::string Frame(uint64_t call_id, wire::FrameKind kind,
                  const std::string& payload) {
  wire::FrameMeta meta;
  meta.set_call_id(call_id);
  meta.set_kind(kind);
  meta.set_method("pkg.Svc/M");
  transport::Buffer b;
  AppendFrame(b, meta, payload);
  return b.TakeString(b.size());
}

std::string RawHeader(uint32_t body, uint32_t meta) {
  std::string h(wire::kHeaderSize, '\0');
  wire::EncodeHeader({body, meta}, h.data());
  return h;
}

TEST(FrameCodecTest, DecodesWholeFramesAndAsksForTheRest) {
  FrameDecoder decoder({});
  RecordingSink sink;
  transport::Buffer in;
  std::string f = Frame(7, wire::REQUEST, "payload!");
  in.Append(f.substr(0, 5));
  auto wanted = decoder.Decode(in, sink);
  ASSERT_TRUE(wanted.ok());
  EXPECT_EQ(*wanted, wire::kHeaderSize);  // Magic matched; want the header.
  in.Append(f.substr(5, 7));
  wanted = decoder.Decode(in, sink);
  ASSERT_TRUE(wanted.ok());
  // Header consumed: the low watermark is now the whole body.
  EXPECT_EQ(*wanted, f.size() - wire::kHeaderSize);
  EXPECT_TRUE(sink.frames.empty());
  in.Append(f.substr(12));
  wanted = decoder.Decode(in, sink);
  ASSERT_TRUE(wanted.ok());
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0].meta.call_id(), 7u);
  EXPECT_EQ(sink.frames[0].payload, "payload!");
  EXPECT_EQ(in.size(), 0u);
}

TEST(FrameCodecTest, SplitAtEveryOffsetDecodesTheSame) {
  std::string two = Frame(1, wire::REQUEST, "abc") + Frame(2, wire::PING, "");
  for (size_t k = 0; k <= two.size(); ++k) {
    FrameDecoder decoder({});
    RecordingSink sink;
    transport::Buffer in;
    in.Append(two.substr(0, k));
    ASSERT_TRUE(decoder.Decode(in, sink).ok()) << k;
    in.Append(two.substr(k));
    ASSERT_TRUE(decoder.Decode(in, sink).ok()) << k;
    ASSERT_EQ(sink.frames.size(), 2u) << "split at " << k;
    EXPECT_EQ(sink.frames[0].payload, "abc");
    EXPECT_EQ(sink.frames[1].meta.kind(), wire::PING);
  }
}

TEST(FrameCodecTest, ManyFramesInOneBuffer) {
  std::string all;
  for (int i = 1; i <= 100; ++i) all += Frame(i, wire::REQUEST, "x");
  FrameDecoder decoder({});
  RecordingSink sink;
  transport::Buffer in;
  in.Append(all);
  auto wanted = decoder.Decode(in, sink);
  ASSERT_TRUE(wanted.ok());
  EXPECT_EQ(*wanted, 1u);  // Empty: wants the first magic byte.
  ASSERT_EQ(sink.frames.size(), 100u);
  EXPECT_EQ(sink.frames[99].meta.call_id(), 100u);
}

TEST(FrameCodecTest, WrongMagicFailsOnTheFirstByte) {
  FrameDecoder decoder({});
  RecordingSink sink;
  transport::Buffer in;
  in.Append("G");
  auto wanted = decoder.Decode(in, sink);
  ASSERT_FALSE(wanted.ok());
  EXPECT_EQ(wanted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wanted.status().message().find("magic"), std::string::npos);
}

TEST(FrameCodecTest, MetaLargerThanBodyIsAnError) {
  FrameDecoder decoder({});
  RecordingSink sink;
  transport::Buffer in;
  in.Append(RawHeader(4, 5));
  auto wanted = decoder.Decode(in, sink);
  ASSERT_FALSE(wanted.ok());
  EXPECT_EQ(wanted.status().message(), "frame meta_size 5 exceeds body_size 4");
}

TEST(FrameCodecTest, MetaOverLimitIsAnErrorBeforeBuffering) {
  FrameLimits limits;
  limits.max_meta_bytes = 100;
  FrameDecoder decoder(limits);
  RecordingSink sink;
  transport::Buffer in;
  in.Append(RawHeader(1000, 101));
  auto wanted = decoder.Decode(in, sink);
  ASSERT_FALSE(wanted.ok());
  EXPECT_EQ(wanted.status().message(),
            "frame meta_size 101 exceeds max_meta_bytes 100");
}

TEST(FrameCodecTest, UnparsableMetaAndBadKindsAreErrors) {
  for (const std::string& meta_bytes :
       {std::string("\xff\xff\xff", 3), std::string("\x10\x00", 2),
        std::string("\x10\x63", 2)}) {
    FrameDecoder decoder({});
    RecordingSink sink;
    transport::Buffer in;
    in.Append(RawHeader(meta_bytes.size(), meta_bytes.size()));
    in.Append(meta_bytes);
    auto wanted = decoder.Decode(in, sink);
    EXPECT_FALSE(wanted.ok());
    EXPECT_TRUE(sink.frames.empty());
  }
}

TEST(FrameCodecTest, OversizedPayloadIsReportedThenDiscarded) {
  FrameLimits limits;
  limits.max_message_bytes = 16;
  FrameDecoder decoder(limits);
  RecordingSink sink;
  wire::FrameMeta meta;
  meta.set_call_id(3);
  meta.set_kind(wire::REQUEST);
  std::string meta_bytes = meta.SerializeAsString();
  transport::Buffer in;
  in.Append(RawHeader(meta_bytes.size() + 100, meta_bytes.size()));
  in.Append(meta_bytes);
  in.Append(std::string(40, 'z'));
  auto wanted = decoder.Decode(in, sink);
  ASSERT_TRUE(wanted.ok());
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_TRUE(sink.frames[0].oversized);
  EXPECT_EQ(sink.frames[0].oversized_size, 100u);
  EXPECT_EQ(in.size(), 0u);  // Discarded as it arrived.
  EXPECT_EQ(*wanted, 60u);
  in.Append(std::string(60, 'z'));
  in.Append(Frame(4, wire::REQUEST, "ok"));
  wanted = decoder.Decode(in, sink);
  ASSERT_TRUE(wanted.ok());
  ASSERT_EQ(sink.frames.size(), 2u);
  EXPECT_EQ(sink.frames[1].payload, "ok");
}

TEST(FrameCodecTest, HugeBodySizeIsNotBuffered) {
  FrameDecoder decoder({});
  RecordingSink sink;
  wire::FrameMeta meta;
  meta.set_call_id(9);
  meta.set_kind(wire::REQUEST);
  std::string meta_bytes = meta.SerializeAsString();
  transport::Buffer in;
  in.Append(RawHeader(0xFFFFFFFFu, meta_bytes.size()));
  in.Append(meta_bytes);
  auto wanted = decoder.Decode(in, sink);
  ASSERT_TRUE(wanted.ok());
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_TRUE(sink.frames[0].oversized);
  EXPECT_LE(*wanted, 64u * 1024);  // Drained in bounded chunks.
}

}  // namespace
}  // namespace bevrpc
