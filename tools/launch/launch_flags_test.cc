#include "tools/launch/launch_flags.h"

#include "gtest/gtest.h"

namespace bevrpc::launch {
namespace {

TEST(LaunchFlagsTest, ParsesBothForms) {
  absl::StatusOr<LaunchFlags> f = ParseLaunchFlags(
      {"t.textproto", "--control=127.0.0.1:0", "--bin_dir", "out",
       "--state_dir=/s", "--drain_delay=500ms"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->topology, "t.textproto");
  EXPECT_EQ(f->control, "127.0.0.1:0");
  EXPECT_EQ(f->bin_dir, "out");
  EXPECT_EQ(f->state_dir, "/s");
  EXPECT_EQ(f->drain_delay, absl::Milliseconds(500));
  EXPECT_TRUE(f->emit_systemd.empty());
}

TEST(LaunchFlagsTest, ErrorsNameTheFlag) {
  EXPECT_EQ(ParseLaunchFlags({"t", "--bogus=1"}).status().message(),
            "unknown flag --bogus");
  EXPECT_NE(ParseLaunchFlags({"t", "--control=nope"})
                .status()
                .message()
                .find("--control=nope"),
            std::string::npos);
  EXPECT_EQ(ParseLaunchFlags({"t", "--drain_delay=x"}).status().message(),
            "--drain_delay=x: expected a duration >= 0 (e.g. 2s)");
  EXPECT_EQ(ParseLaunchFlags({"--bin_dir=x"}).status().message(),
            "no TOPOLOGY.textproto given");
  EXPECT_EQ(ParseLaunchFlags({"t", "--bin_dir"}).status().message(),
            "--bin_dir: needs a value");
  EXPECT_FALSE(ParseLaunchFlags({"a", "b"}).ok());
}

}  // namespace
}  // namespace bevrpc::launch
