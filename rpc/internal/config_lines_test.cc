#include "rpc/internal/config_lines.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bevrpc::internal {
namespace {

using Lines = std::vector<std::pair<int, std::string>>;

// Every line handed to the callback, with its number.
Lines Collect(absl::string_view text, ConfigLineOptions options = {}) {
  Lines lines;
  absl::Status s = ForEachConfigLine(
      text,
      [&](int n, absl::string_view line) {
        lines.emplace_back(n, std::string(line));
        return absl::OkStatus();
      },
      options);
  EXPECT_TRUE(s.ok()) << s;
  return lines;
}

TEST(ConfigLinesTest, SkipsBlankLinesAndCommentsAndKeepsTheNumbering) {
  EXPECT_EQ(Collect("# header\n"
                    "\n"
                    "  a b  \n"
                    "\t\r\n"
                    "   # indented comment\n"
                    "c\r\n"
                    "d"),
            (Lines{{3, "a b"}, {6, "c"}, {7, "d"}}));
}

TEST(ConfigLinesTest, EmptyTextCallsNothing) {
  EXPECT_TRUE(Collect("").empty());
  EXPECT_TRUE(Collect("\n\n#\n").empty());
}

TEST(ConfigLinesTest, AHashInsideALineIsDataByDefault) {
  EXPECT_EQ(Collect("name tok#en # not a comment\n"),
            (Lines{{1, "name tok#en # not a comment"}}));
}

TEST(ConfigLinesTest, TrailingCommentsAreCutWhenAskedFor) {
  ConfigLineOptions options;
  options.trailing_comments = true;
  EXPECT_EQ(Collect("a:1 weight=2   # the first\n"
                    "   # only a comment\n"
                    "b:2#tight\n",
                    options),
            (Lines{{1, "a:1 weight=2"}, {3, "b:2"}}));
}

TEST(ConfigLinesTest, StopsAtTheFirstErrorAndReturnsIt) {
  std::vector<int> seen;
  absl::Status s = ForEachConfigLine(
      "ok\n\nbad\nnever\n", [&](int n, absl::string_view line) {
        seen.push_back(n);
        if (line == "bad") {
          return absl::InvalidArgumentError(absl::StrCat("line ", n, ": bad"));
        }
        return absl::OkStatus();
      });
  EXPECT_EQ(s, absl::InvalidArgumentError("line 3: bad"));
  EXPECT_EQ(seen, (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace bevrpc::internal
