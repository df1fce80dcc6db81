// The pieces of tests/testing/slow_reader.h that can be checked without a
// server; RunSlowReaderCheck() itself runs in tests/e2e:slow_reader_test
// and tests/e2e/tls:tls_slow_reader_test.
#include "tests/testing/slow_reader.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace bevrpc::testing {
namespace {

TEST(ProcStatusKiBTest, ReadsThisProcessMemory) {
  const int64_t rss = ProcStatusKiB(getpid(), "VmRSS");
  EXPECT_GT(rss, 0);
  // The peak is never below the current figure.
  EXPECT_GE(ProcStatusKiB(getpid(), "VmHWM"), rss);
}

TEST(ProcStatusKiBTest, SeesMemoryTouchedSinceTheLastRead) {
  const int64_t before = ProcStatusKiB(getpid(), "VmRSS");
  std::vector<char> touched(64 << 20);
  std::memset(touched.data(), 1, touched.size());
  const int64_t after = ProcStatusKiB(getpid(), "VmRSS");
  EXPECT_GE(after - before, 32 * 1024) << before << " KiB, then " << after;
  EXPECT_EQ(touched[touched.size() / 2], 1);
}

TEST(ProcStatusKiBTest, AFieldMustMatchWhole) {
  EXPECT_EQ(ProcStatusKiB(getpid(), "VmRS"), -1);
  EXPECT_EQ(ProcStatusKiB(getpid(), "NoSuchField"), -1);
}

TEST(ProcStatusKiBTest, AProcessThatIsGoneIsMinusOne) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(ProcStatusKiB(child, "VmRSS"), -1);
}

}  // namespace
}  // namespace bevrpc::testing
