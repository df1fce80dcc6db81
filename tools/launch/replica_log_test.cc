#include "tools/launch/replica_log.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace bevrpc::launch {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ReplicaLogTest, RotatesOnceAtTheBound) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/r.log";
  {
    ReplicaLog log(path, 20);
    for (int i = 0; i < 10; ++i) log.Append("line" + std::to_string(i));
    EXPECT_LE(log.size(), 20u);
  }
  // 6 bytes a line, 3 fit in 20: lines 9 (current) and 6..8 (.1) remain.
  EXPECT_EQ(Read(path), "line9\n");
  EXPECT_EQ(Read(path + ".1"), "line6\nline7\nline8\n");
  ReplicaLog reopened(path, 20);  // Appends, counting what is there.
  EXPECT_EQ(reopened.size(), 6u);
}

}  // namespace
}  // namespace bevrpc::launch
