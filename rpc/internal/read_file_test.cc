#include "rpc/internal/read_file.h"

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
  return absl::StrCat(::testing::TempDir(), "/read_file_test_", name);
}

void Write(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

TEST(ReadFileTest, ReadsTheBytesUnchanged) {
  const std::string path = TempPath("bytes");
  const std::string contents("a\0b\r\nlast line without newline", 30);
  Write(path, contents);
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, contents);
}

TEST(ReadFileTest, ReadsAFileLargerThanOneRead) {
  const std::string path = TempPath("large");
  std::string contents;
  for (int i = 0; contents.size() < 300 * 1024; ++i) {
    absl::StrAppend(&contents, "line ", i, "\n");
  }
  Write(path, contents);
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->size(), contents.size());
  EXPECT_EQ(*read, contents);
}

TEST(ReadFileTest, AnEmptyFileIsAnEmptyString) {
  const std::string path = TempPath("empty");
  Write(path, "");
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

TEST(ReadFileTest, AMissingFileIsNotFoundNamingThePath) {
  const std::string path = TempPath("missing");
  std::remove(path.c_str());
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(),
            absl::StrCat(path, ": ", std::strerror(ENOENT)));
}

// A directory opens but cannot be read: an error, not "".
TEST(ReadFileTest, ADirectoryIsAnError) {
  absl::StatusOr<std::string> read = ReadFileToString(::testing::TempDir());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(),
            absl::StrCat(::testing::TempDir(), ": ", std::strerror(EISDIR)));
}

}  // namespace
}  // namespace bevrpc::internal
