#include "tools/launch/endpoints_file.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace bevrpc::launch {
namespace {

TEST(EndpointsFileTest, WritesOneLinePerReadyReplica) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/kv";
  ASSERT_TRUE(WriteEndpointsFile(path, "kv",
                                 {{"127.0.0.1:4001", "kv/0"},
                                  {"127.0.0.1:4003", "kv/2"}})
                  .ok());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(),
            "# ready replicas of kv, by bevrpc-launch\n"
            "127.0.0.1:4001 id=kv/0\n"
            "127.0.0.1:4003 id=kv/2\n");
  std::ifstream tmp(path + ".tmp");
  EXPECT_FALSE(tmp.good());  // Renamed over the file.
}

TEST(EndpointsFileTest, ErrorNamesThePath) {
  absl::Status s = WriteEndpointsFile("/nonexistent-dir/kv", "kv", {});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-dir/kv"), std::string::npos);
}

}  // namespace
}  // namespace bevrpc::launch
