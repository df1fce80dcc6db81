// Checks that every code block marked `<!-- snippet: PATH -->` in the docs
// is exactly the file PATH, so the docs show code that is built and tested.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace bevrpc {
namespace {

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/bevrpc/", path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(Runfile(path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Snippet {
  std::string path;
  std::string body;
};

std::vector<Snippet> Snippets(const std::string& markdown) {
  std::vector<Snippet> out;
  std::vector<std::string> lines = absl::StrSplit(markdown, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    constexpr absl::string_view kMarker = "<!-- snippet: ";
    if (!absl::StartsWith(lines[i], kMarker)) continue;
    Snippet s;
    s.path = lines[i].substr(kMarker.size());
    s.path = s.path.substr(0, s.path.find(' '));
    size_t j = i + 1;
    if (j >= lines.size() || !absl::StartsWith(lines[j], "```")) {
      s.body = "<no code block after the marker>";
      out.push_back(s);
      continue;
    }
    for (++j; j < lines.size() && !absl::StartsWith(lines[j], "```"); ++j) {
      absl::StrAppend(&s.body, lines[j], "\n");
    }
    out.push_back(s);
    i = j;
  }
  return out;
}

TEST(SnippetsTest, TutorialCodeBlocksAreTheRealFiles) {
  std::string doc = ReadFile("docs/tutorial.md");
  ASSERT_FALSE(doc.empty()) << "docs/tutorial.md not in runfiles";
  std::vector<Snippet> snippets = Snippets(doc);
  ASSERT_GE(snippets.size(), 3u);
  for (const Snippet& s : snippets) {
    std::string file = ReadFile(s.path);
    ASSERT_FALSE(file.empty()) << s.path << " not in runfiles";
    EXPECT_EQ(s.body, file) << "docs/tutorial.md's block for " << s.path
                            << " differs from the file: update the doc";
  }
}

}  // namespace
}  // namespace bevrpc
