#include "rpc/internal/file_stamp.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bevrpc::internal {
namespace {

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/file_stamp_test_", name);
}

void Write(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// Gives `path` the modification time `sec` (whole seconds).
void SetMtime(const std::string& path, time_t sec) {
  struct timespec times[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0)
      << std::strerror(errno);
}

TEST(FileStampTest, SameFileSameStamp) {
  const std::string path = TempPath("same");
  Write(path, "abc");
  absl::StatusOr<FileStamp> a = FileStamp::Of(path);
  absl::StatusOr<FileStamp> b = FileStamp::Of(path);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->size, 3);
  EXPECT_NE(*a, FileStamp());
}

TEST(FileStampTest, NewSizeIsAChangeEvenWithTheSameMtime) {
  const std::string path = TempPath("size");
  Write(path, "abc");
  SetMtime(path, 1000000);
  absl::StatusOr<FileStamp> before = FileStamp::Of(path);
  ASSERT_TRUE(before.ok()) << before.status();
  Write(path, "abcd");
  SetMtime(path, 1000000);
  absl::StatusOr<FileStamp> after = FileStamp::Of(path);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(before->mtime_ns, after->mtime_ns);
  EXPECT_NE(*before, *after);
}

TEST(FileStampTest, NewMtimeIsAChangeEvenWithTheSameSize) {
  const std::string path = TempPath("mtime");
  Write(path, "abc");
  SetMtime(path, 1000000);
  absl::StatusOr<FileStamp> before = FileStamp::Of(path);
  ASSERT_TRUE(before.ok()) << before.status();
  Write(path, "xyz");
  SetMtime(path, 1000001);
  absl::StatusOr<FileStamp> after = FileStamp::Of(path);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(*before, *after);
  EXPECT_EQ(after->mtime_ns - before->mtime_ns, 1000000000);
}

// A file replaced by rename with the same size and mtime: only the inode
// tells.
TEST(FileStampTest, ReplacedByRenameIsAChange) {
  const std::string path = TempPath("renamed");
  const std::string tmp = TempPath("renamed.tmp");
  Write(path, "abc");
  SetMtime(path, 1000000);
  absl::StatusOr<FileStamp> before = FileStamp::Of(path);
  ASSERT_TRUE(before.ok()) << before.status();
  // `path` still exists while `tmp` is created, so the inode differs.
  Write(tmp, "xyz");
  SetMtime(tmp, 1000000);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << std::strerror(errno);
  absl::StatusOr<FileStamp> after = FileStamp::Of(path);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(before->size, after->size);
  EXPECT_EQ(before->mtime_ns, after->mtime_ns);
  EXPECT_NE(before->ino, after->ino);
  EXPECT_NE(*before, *after);
}

TEST(FileStampTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = TempPath("missing");
  std::remove(path.c_str());
  absl::StatusOr<FileStamp> stamp = FileStamp::Of(path);
  ASSERT_FALSE(stamp.ok());
  EXPECT_EQ(stamp.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(stamp.status().message(),
            absl::StrCat(path, ": ", std::strerror(ENOENT)));
}

}  // namespace
}  // namespace bevrpc::internal
