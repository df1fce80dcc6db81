// kv_log: record round trip, torn tails at every byte, corruption in the
// middle, limits, and the directory lock.
#include "services/kv/kv_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bevrpc::kv {
namespace {

using log_format::RecordType;

struct Rec {
  RecordType type;
  uint64_t version;
  std::string key;
  std::string value;
  bool operator==(const Rec& o) const {
    return type == o.type && version == o.version && key == o.key &&
           value == o.value;
  }
};

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

absl::StatusOr<ReplayResult> Replay(const std::string& path,
                                    std::vector<Rec>* out,
                                    ReadLimits limits = {},
                                    bool repair = false) {
  out->clear();
  return ReplayLogFile(path, limits, repair, [&](const LogRecord& r) {
    out->push_back(
        Rec{r.type, r.version, std::string(r.key), std::string(r.value)});
  });
}

std::vector<Rec> Sample() {
  return {{RecordType::kLastVersion, 7, "", ""},
          {RecordType::kPut, 8, "alpha", "one"},
          {RecordType::kPut, 9, "beta", std::string(3000, 'b')},
          {RecordType::kDelete, 8, "alpha", ""},
          {RecordType::kPut, 10, std::string(1024, 'k'), ""}};
}

std::string Encode(const std::vector<Rec>& recs) {
  std::string out;
  for (const Rec& r : recs) AppendRecord(r.type, r.version, r.key, r.value, &out);
  return out;
}

TEST(Crc32cTest, KnownValues) {
  // RFC 3720 B.4 test vectors.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c("6789", Crc32c("12345")), 0xe3069283u);
  EXPECT_EQ(UnmaskCrc(MaskCrc(0x12345678u)), 0x12345678u);
}

TEST(KvLogTest, RoundTripThroughLogFile) {
  std::string dir = TempDir("roundtrip");
  std::string path = dir + "/kv.log";
  auto log = LogFile::Open(path);
  ASSERT_TRUE(log.ok()) << log.status();
  std::vector<Rec> want = Sample();
  for (const Rec& r : want) {
    std::string buf;
    AppendRecord(r.type, r.version, r.key, r.value, &buf);
    ASSERT_TRUE((*log)->Append(buf).ok());
  }
  ASSERT_TRUE((*log)->Sync().ok());
  EXPECT_EQ((*log)->size(), Encode(want).size());
  std::vector<Rec> got;
  auto r = Replay(path, &got);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(got, want);
  EXPECT_EQ(r->records, want.size());
  EXPECT_EQ(r->valid_bytes, Encode(want).size());
  EXPECT_EQ(r->dropped_bytes, 0u);
}

TEST(KvLogTest, MissingFileIsEmpty) {
  std::vector<Rec> got;
  auto r = Replay(TempDir("missing") + "/kv.log", &got);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->records, 0u);
  EXPECT_TRUE(got.empty());
}

// A crash mid-write leaves any prefix of the last record: every one of them
// replays the records before it and reports the rest as dropped.
TEST(KvLogTest, TornTailAtEveryByteOfTheLastRecord) {
  std::vector<Rec> recs = Sample();
  recs.push_back({RecordType::kPut, 11, "last", "the value written last"});
  const std::string all = Encode(recs);
  const std::string good =
      Encode(std::vector<Rec>(recs.begin(), recs.end() - 1));
  std::string path = TempDir("torn") + "/kv.log";
  for (size_t cut = good.size(); cut < all.size(); ++cut) {
    WriteFile(path, all.substr(0, cut));
    std::vector<Rec> got;
    auto r = Replay(path, &got);
    ASSERT_TRUE(r.ok()) << "cut at " << cut << ": " << r.status();
    EXPECT_EQ(got.size(), recs.size() - 1) << "cut at " << cut;
    EXPECT_EQ(r->valid_bytes, good.size());
    EXPECT_EQ(r->dropped_bytes, cut - good.size());
  }
  // Garbage (zeros, as a power loss can leave) after the last record too.
  WriteFile(path, good + std::string(100, '\0'));
  std::vector<Rec> got;
  auto r = Replay(path, &got);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dropped_bytes, 100u);
}

// Every single-byte flip in a middle record is corruption, not a tail.
TEST(KvLogTest, CorruptMiddleRecordIsAnErrorNamingFileAndOffset) {
  std::vector<Rec> recs = Sample();
  const std::string all = Encode(recs);
  const size_t start = Encode({recs[0]}).size();  // record 1 starts here
  const size_t end = Encode({recs[0], recs[1]}).size();
  std::string path = TempDir("corrupt") + "/kv.log";
  for (size_t at = start; at < end; ++at) {
    std::string bad = all;
    bad[at] ^= 0x40;
    WriteFile(path, bad);
    std::vector<Rec> got;
    auto r = Replay(path, &got);
    ASSERT_FALSE(r.ok()) << "flip at " << at;
    // A flipped type or format byte fails the header checksum as well.
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_NE(r.status().message().find(
                  absl::StrCat(path, ": corrupt record at offset ", start)),
              std::string::npos)
        << r.status();
  }
  // repair keeps the good prefix and reports the rest dropped.
  std::string bad = all;
  bad[start + 30] ^= 1;
  WriteFile(path, bad);
  std::vector<Rec> got;
  auto r = Replay(path, &got, {}, /*repair=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(r->valid_bytes, start);
  EXPECT_EQ(r->dropped_bytes, all.size() - start);
}

TEST(KvLogTest, LengthsOverTheLimitsAreRejectedBeforeAllocating) {
  std::string path = TempDir("limits") + "/kv.log";
  std::string data;
  AppendRecord(RecordType::kPut, 1, "k", std::string(600, 'v'), &data);
  WriteFile(path, data);
  std::vector<Rec> got;
  ReadLimits limits;
  limits.max_value_bytes = 512;
  auto r = Replay(path, &got, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(),
            absl::StrCat(path, ": record at offset 0: value_length 600 "
                               "exceeds max_value_bytes 512"));
  limits = {};
  limits.max_key_bytes = 0;
  r = Replay(path, &got, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("key_length 1 exceeds max_key_bytes 0"),
            std::string::npos);
  // A header claiming 4 GiB (checksummed, so really written that way) is
  // refused by the limit, not allocated.
  data.clear();
  AppendRecord(RecordType::kPut, 1, "k", "v", &data);
  data[log_format::kValueLengthOffset + 3] = '\xff';
  uint32_t crc = MaskCrc(Crc32c(absl::string_view(data).substr(4, 24)));
  for (int i = 0; i < 4; ++i) data[i] = static_cast<char>(crc >> (8 * i));
  WriteFile(path, data);
  r = Replay(path, &got);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeds max_value_bytes 1048576"),
            std::string::npos)
      << r.status();
}

TEST(KvLogTest, UnknownFormatVersionIsAnError) {
  std::string path = TempDir("format") + "/kv.log";
  std::string data;
  AppendRecord(RecordType::kPut, 1, "k", "v", &data);
  data[log_format::kFormatOffset] = 9;
  uint32_t crc = MaskCrc(Crc32c(absl::string_view(data).substr(4, 24)));
  for (int i = 0; i < 4; ++i) data[i] = static_cast<char>(crc >> (8 * i));
  WriteFile(path, data);
  std::vector<Rec> got;
  auto r = Replay(path, &got);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            absl::StrCat(path, ": record at offset 0: format version 9 "
                               "(this reader knows 1)"));
}

TEST(KvLogTest, OpenTruncatesTornTail) {
  std::string path = TempDir("truncate") + "/kv.log";
  std::string data = Encode(Sample());
  WriteFile(path, data + "partial");
  auto log = LogFile::Open(path, static_cast<int64_t>(data.size()));
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->size(), data.size());
  std::string more;
  AppendRecord(RecordType::kPut, 12, "after", "x", &more);
  ASSERT_TRUE((*log)->Append(more).ok());
  EXPECT_EQ(ReadFile(path), data + more);
  std::string tail;
  ASSERT_TRUE((*log)->ReadAt(data.size(), more.size(), &tail).ok());
  EXPECT_EQ(tail, more);
}

TEST(KvLogTest, DirLockKeepsASecondHolderOut) {
  std::string dir = TempDir("lock") + "/nested/data";
  auto first = DirLock::Acquire(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  // flock() locks belong to the open file, so a second open in this
  // process conflicts as another process would.
  auto second = DirLock::Acquire(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("data directory ", dir,
                         " is in use by another process (", dir,
                         "/LOCK is locked); each kv_server needs its own "
                         "--data_dir"));
  first->reset();
  EXPECT_TRUE(DirLock::Acquire(dir).ok());
}

}  // namespace
}  // namespace bevrpc::kv
