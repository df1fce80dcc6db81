// Tests for Buffer (byte queue over an evbuffer) and BufferInputStream
// (zero-copy protobuf parsing straight from a Buffer spanning many chains).
#include "transport/buffer.h"

#include <event2/buffer.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "gtest/gtest.h"

namespace bevrpc::transport {
namespace {

using google::protobuf::FileDescriptorProto;

// Number of evbuffer chains holding the buffer's bytes.
int ChainCount(const Buffer& b) {
  return evbuffer_peek(b.raw(), -1, nullptr, nullptr, 0);
}

std::string Pattern(size_t n, int seed = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  return s;
}

std::string Contents(const Buffer& b) {
  std::string s(b.size(), '\0');
  EXPECT_EQ(b.Peek(s.data(), s.size()), s.size());
  return s;
}

// A message of a few hundred KiB with a large string field, nested messages
// and repeated fields, so that fields straddle chain boundaries.
FileDescriptorProto MakeMessage() {
  FileDescriptorProto f;
  f.set_name(Pattern(200 * 1024, 3));
  f.set_package("bevrpc.transport.test");
  for (int i = 0; i < 50; ++i)
    f.add_dependency(absl::StrCat("dep/", i, ".proto"));
  for (int m = 0; m < 10; ++m) {
    auto* msg = f.add_message_type();
    msg->set_name(absl::StrCat("Message", m));
    for (int i = 0; i < 20; ++i) {
      auto* field = msg->add_field();
      field->set_name(absl::StrCat("field_", i, "_", Pattern(i * 13, m)));
      field->set_number(i + 1);
      field->set_type(google::protobuf::FieldDescriptorProto::TYPE_STRING);
    }
  }
  f.set_syntax("proto3");
  return f;
}

// ---------------------------------------------------------------- Buffer

TEST(BufferTest, StartsEmpty) {
  Buffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.size(), 0u);
  char c;
  EXPECT_EQ(b.Peek(&c, 1), 0u);
}

TEST(BufferTest, AppendPeekDrain) {
  Buffer b;
  b.Append("hello ");
  b.Append(std::string("world"));
  const char raw[] = {'!', '\0', '?'};
  b.Append(raw, sizeof(raw));
  EXPECT_EQ(b.size(), 14u);
  EXPECT_FALSE(b.empty());

  char out[5];
  EXPECT_EQ(b.Peek(out, 5), 5u);
  EXPECT_EQ(std::string(out, 5), "hello");
  EXPECT_EQ(b.size(), 14u);  // Peek does not consume.

  b.Drain(6);
  EXPECT_EQ(b.size(), 8u);
  EXPECT_EQ(Contents(b), std::string("world!\0?", 8));
}

TEST(BufferTest, PeekMoreThanSizeCopiesWhatIsThere) {
  Buffer b;
  b.Append("abc");
  char out[16] = {};
  EXPECT_EQ(b.Peek(out, sizeof(out)), 3u);
  EXPECT_EQ(std::string(out, 3), "abc");
  EXPECT_EQ(b.size(), 3u);
}

TEST(BufferTest, DrainMoreThanSizeEmpties) {
  Buffer b;
  b.Append("abc");
  b.Drain(100);
  EXPECT_TRUE(b.empty());
  b.Drain(1);  // Draining an empty buffer is harmless.
  EXPECT_TRUE(b.empty());
}

TEST(BufferTest, TakeString) {
  Buffer b;
  b.Append("frame-one|frame-two");
  EXPECT_EQ(b.TakeString(9), "frame-one");
  EXPECT_EQ(b.size(), 10u);
  EXPECT_EQ(b.TakeString(0), "");
  EXPECT_EQ(b.TakeString(100), "|frame-two");  // Clamped to what is there.
  EXPECT_TRUE(b.empty());
}

TEST(BufferTest, TakeStringAcrossManyChains) {
  Buffer b;
  std::string expected;
  Buffer staging;
  for (int i = 0; i < 200; ++i) {
    std::string chunk = Pattern(97 + i, i);
    staging.Append(chunk);
    staging.MoveTo(&b, chunk.size());
    expected += chunk;
  }
  ASSERT_GT(ChainCount(b), 1);
  EXPECT_EQ(b.TakeString(expected.size()), expected);
  EXPECT_TRUE(b.empty());
}

TEST(BufferTest, MoveToMovesFrontBytesInOrder) {
  Buffer src;
  Buffer dst;
  dst.Append("dst:");
  std::string big = Pattern(100000);
  src.Append(big);
  src.MoveTo(&dst, 60000);
  EXPECT_EQ(src.size(), 40000u);
  EXPECT_EQ(dst.size(), 60004u);
  EXPECT_EQ(Contents(dst), "dst:" + big.substr(0, 60000));
  EXPECT_EQ(Contents(src), big.substr(60000));

  src.MoveTo(&dst, 40000);
  EXPECT_TRUE(src.empty());
  EXPECT_EQ(Contents(dst), "dst:" + big);
}

TEST(BufferTest, MoveToMoreThanSizeMovesEverything) {
  Buffer src;
  Buffer dst;
  src.Append("abc");
  src.MoveTo(&dst, 10);
  EXPECT_TRUE(src.empty());
  EXPECT_EQ(Contents(dst), "abc");
}

TEST(BufferTest, ReserveCommitAppendsOnlyWhatWasUsed) {
  Buffer b;
  b.Append("head:");
  char* p = b.Reserve(100);
  ASSERT_NE(p, nullptr);
  std::memset(p, 'x', 100);  // All 100 bytes are writable.
  std::memcpy(p, "payload", 7);
  EXPECT_EQ(b.size(), 5u);  // Not part of the buffer until Commit.
  b.Commit(7);
  EXPECT_EQ(b.size(), 12u);
  EXPECT_EQ(Contents(b), "head:payload");
  b.Append(":tail");
  EXPECT_EQ(Contents(b), "head:payload:tail");
}

TEST(BufferTest, ReserveIsContiguousEvenWhenLarge) {
  Buffer b;
  b.Append(Pattern(3000));  // Leaves a partly used chain behind.
  constexpr size_t kBig = 256 * 1024;
  char* p = b.Reserve(kBig);
  ASSERT_NE(p, nullptr);
  std::string data = Pattern(kBig, 5);
  std::memcpy(p, data.data(), kBig);  // ASan: the whole range is ours.
  b.Commit(kBig);
  EXPECT_EQ(b.size(), 3000 + kBig);
  b.Drain(3000);
  EXPECT_EQ(b.TakeString(kBig), data);
}

TEST(BufferTest, CommitZeroAddsNothing) {
  Buffer b;
  b.Append("x");
  b.Reserve(16);
  b.Commit(0);
  EXPECT_EQ(Contents(b), "x");
  char* p = b.Reserve(4);  // A new Reserve after Commit works.
  std::memcpy(p, "yz", 2);
  b.Commit(2);
  EXPECT_EQ(Contents(b), "xyz");
}

TEST(BufferTest, BorrowedEvbufferIsNotFreed) {
  evbuffer* raw = evbuffer_new();
  ASSERT_NE(raw, nullptr);
  {
    Buffer borrowed(raw);
    EXPECT_EQ(borrowed.raw(), raw);
    borrowed.Append("kept");
  }
  // Still valid (ASan would report a use after free otherwise).
  EXPECT_EQ(evbuffer_get_length(raw), 4u);
  evbuffer_free(raw);
}

// ------------------------------------------------------ BufferInputStream

// Appends `data` to `b` as many separate chains of `chunk` bytes that refer
// to `data` in place (`data` must outlive `b`).
void AddByReference(Buffer* b, const std::string& data, size_t chunk) {
  for (size_t off = 0; off < data.size(); off += chunk) {
    size_t n = std::min(chunk, data.size() - off);
    ASSERT_EQ(evbuffer_add_reference(b->raw(), data.data() + off, n, nullptr,
                                     nullptr),
              0);
  }
}

TEST(BufferInputStreamTest, ParsesMessageSpanningManyReferenceChains) {
  FileDescriptorProto original = MakeMessage();
  std::string wire = original.SerializeAsString();
  ASSERT_GT(wire.size(), 200u * 1024);

  Buffer b;
  AddByReference(&b, wire, 997);  // Odd size: fields straddle chains.
  ASSERT_EQ(b.size(), wire.size());
  ASSERT_GT(ChainCount(b), 100);

  BufferInputStream in(b, b.size());
  FileDescriptorProto parsed;
  ASSERT_TRUE(parsed.ParseFromZeroCopyStream(&in));
  EXPECT_EQ(in.ByteCount(), static_cast<int64_t>(wire.size()));
  EXPECT_EQ(parsed.SerializeAsString(), wire);
  EXPECT_EQ(parsed.name(), original.name());
  EXPECT_EQ(b.size(), wire.size());  // Reading in place consumes nothing.
}

TEST(BufferInputStreamTest, ParsesMessageBuiltFromManyAppendsAndMoves) {
  FileDescriptorProto original = MakeMessage();
  std::string wire = original.SerializeAsString();

  // Many small Appends into a staging buffer, moved over piecewise, so the
  // destination holds many chains, some of them partial.
  Buffer b;
  Buffer staging;
  size_t off = 0;
  int i = 0;
  while (off < wire.size()) {
    size_t n = std::min<size_t>(wire.size() - off, 1 + (i * 131) % 3000);
    staging.Append(wire.data() + off, n);
    if (i % 3 == 2 || off + n == wire.size())
      staging.MoveTo(&b, staging.size());
    off += n;
    ++i;
  }
  ASSERT_EQ(b.size(), wire.size());
  ASSERT_GT(ChainCount(b), 10);

  BufferInputStream in(b, b.size());
  FileDescriptorProto parsed;
  ASSERT_TRUE(parsed.ParseFromZeroCopyStream(&in));
  EXPECT_EQ(parsed.SerializeAsString(), wire);
}

TEST(BufferInputStreamTest, LimitStopsAtTheMessageBoundary) {
  FileDescriptorProto original = MakeMessage();
  std::string wire = original.SerializeAsString();
  // The next frame's bytes follow the message; they are not valid protobuf
  // (0xff... is a bad tag), so reading past `limit` would fail the parse.
  std::string trailer(5000, '\xff');
  std::string all = wire + trailer;

  Buffer b;
  AddByReference(&b, all, 4093);
  BufferInputStream in(b, wire.size());
  FileDescriptorProto parsed;
  ASSERT_TRUE(parsed.ParseFromZeroCopyStream(&in));
  EXPECT_EQ(parsed.SerializeAsString(), wire);
  EXPECT_EQ(in.ByteCount(), static_cast<int64_t>(wire.size()));
  EXPECT_EQ(b.size(), all.size());
}

TEST(BufferInputStreamTest, LimitShortOfTheMessageFailsTheParse) {
  FileDescriptorProto original = MakeMessage();
  std::string wire = original.SerializeAsString();
  Buffer b;
  AddByReference(&b, wire, 1000);
  // Cut inside the 200 KiB `name`, which comes first on the wire.
  BufferInputStream in(b, 100 * 1024);
  FileDescriptorProto parsed;
  EXPECT_FALSE(parsed.ParseFromZeroCopyStream(&in));
  EXPECT_LE(in.ByteCount(), 100 * 1024);
}

TEST(BufferInputStreamTest, LimitLargerThanBufferIsClamped) {
  Buffer b;
  b.Append("abcdef");
  BufferInputStream in(b, 1000);
  const void* data;
  int size;
  std::string seen;
  while (in.Next(&data, &size))
    seen.append(static_cast<const char*>(data), size);
  EXPECT_EQ(seen, "abcdef");
  EXPECT_EQ(in.ByteCount(), 6);
}

TEST(BufferInputStreamTest, EmptyBufferOrZeroLimitHasNoData) {
  Buffer empty;
  const void* data;
  int size;
  BufferInputStream in1(empty, 100);
  EXPECT_FALSE(in1.Next(&data, &size));
  EXPECT_EQ(in1.ByteCount(), 0);

  Buffer b;
  b.Append("abc");
  BufferInputStream in2(b, 0);
  EXPECT_FALSE(in2.Next(&data, &size));
  EXPECT_EQ(in2.ByteCount(), 0);
}

// Three chains: "abc" "defg" "hij".
class ChunkedStreamTest : public ::testing::Test {
 protected:
  ChunkedStreamTest() {
    for (const std::string& s : chunks_) {
      EXPECT_EQ(evbuffer_add_reference(b_.raw(), s.data(), s.size(), nullptr,
                                       nullptr),
                0);
    }
    EXPECT_EQ(ChainCount(b_), 3);
  }

  std::string NextString(BufferInputStream& in) {
    const void* data;
    int size;
    if (!in.Next(&data, &size)) return "<eof>";
    return std::string(static_cast<const char*>(data), size);
  }

  const std::vector<std::string> chunks_ = {"abc", "defg", "hij"};
  Buffer b_;
};

TEST_F(ChunkedStreamTest, NextWalksTheChainsInOrder) {
  BufferInputStream in(b_, b_.size());
  EXPECT_EQ(NextString(in), "abc");
  EXPECT_EQ(in.ByteCount(), 3);
  EXPECT_EQ(NextString(in), "defg");
  EXPECT_EQ(in.ByteCount(), 7);
  EXPECT_EQ(NextString(in), "hij");
  EXPECT_EQ(in.ByteCount(), 10);
  EXPECT_EQ(NextString(in), "<eof>");
  EXPECT_EQ(in.ByteCount(), 10);
}

TEST_F(ChunkedStreamTest, BackUpReturnsTheTailOfTheLastNext) {
  BufferInputStream in(b_, b_.size());
  EXPECT_EQ(NextString(in), "abc");
  in.BackUp(1);
  EXPECT_EQ(in.ByteCount(), 2);
  EXPECT_EQ(NextString(in), "c");
  EXPECT_EQ(NextString(in), "defg");
  in.BackUp(4);  // The whole of the last Next.
  EXPECT_EQ(in.ByteCount(), 3);
  EXPECT_EQ(NextString(in), "defg");
  EXPECT_EQ(in.ByteCount(), 7);
  EXPECT_EQ(NextString(in), "hij");
  in.BackUp(0);
  EXPECT_EQ(in.ByteCount(), 10);
}

TEST_F(ChunkedStreamTest, SkipCrossesChains) {
  BufferInputStream in(b_, b_.size());
  EXPECT_TRUE(in.Skip(5));  // "abc" + "de"
  EXPECT_EQ(in.ByteCount(), 5);
  EXPECT_EQ(NextString(in), "fg");
  EXPECT_TRUE(in.Skip(0));
  EXPECT_TRUE(in.Skip(3));  // Exactly to the end.
  EXPECT_EQ(in.ByteCount(), 10);
  EXPECT_EQ(NextString(in), "<eof>");
}

TEST_F(ChunkedStreamTest, SkipToAChainBoundaryThenNext) {
  BufferInputStream in(b_, b_.size());
  EXPECT_TRUE(in.Skip(3));
  EXPECT_EQ(in.ByteCount(), 3);
  EXPECT_EQ(NextString(in), "defg");
}

TEST_F(ChunkedStreamTest, SkipPastTheEndFails) {
  BufferInputStream in(b_, b_.size());
  EXPECT_EQ(NextString(in), "abc");
  EXPECT_FALSE(in.Skip(100));
  EXPECT_EQ(NextString(in), "<eof>");
}

TEST_F(ChunkedStreamTest, LimitInsideAChain) {
  BufferInputStream in(b_, 5);
  EXPECT_EQ(NextString(in), "abc");
  EXPECT_EQ(NextString(in), "de");
  EXPECT_EQ(NextString(in), "<eof>");
  EXPECT_EQ(in.ByteCount(), 5);

  BufferInputStream skip(b_, 5);
  EXPECT_FALSE(skip.Skip(6));  // Beyond the limit, though the buffer has more.
}

TEST_F(ChunkedStreamTest, CodedInputStreamReadsAcrossChains) {
  BufferInputStream in(b_, b_.size());
  google::protobuf::io::CodedInputStream coded(&in);
  std::string s;
  ASSERT_TRUE(coded.ReadString(&s, 6));
  EXPECT_EQ(s, "abcdef");
  ASSERT_TRUE(coded.ReadString(&s, 4));
  EXPECT_EQ(s, "ghij");
  EXPECT_FALSE(coded.ReadString(&s, 1));
}

}  // namespace
}  // namespace bevrpc::transport
