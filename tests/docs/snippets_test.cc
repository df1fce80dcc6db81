// Checks that every code block marked `<!-- snippet: PATH -->` in the docs
// is exactly the file PATH, so the docs show code that is built and tested.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
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

// The lines of `file` between "// [START region]" and "// [END region]".
std::string Region(const std::string& file, const std::string& region) {
  std::string out;
  bool inside = false;
  for (absl::string_view line : absl::StrSplit(file, '\n')) {
    absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(line);
    if (trimmed == absl::StrCat("// [START ", region, "]")) {
      inside = true;
    } else if (trimmed == absl::StrCat("// [END ", region, "]")) {
      return out;
    } else if (inside) {
      absl::StrAppend(&out, line, "\n");
    }
  }
  return "<region " + region + " not found>";
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

// Checks every snippet of `doc`; returns how many there were.
size_t CheckDoc(const std::string& doc_path) {
  std::string doc = ReadFile(doc_path);
  EXPECT_FALSE(doc.empty()) << doc_path << " not in runfiles";
  std::vector<Snippet> snippets = Snippets(doc);
  for (const Snippet& s : snippets) {
    // PATH or PATH#region (a "// [START region]" ... "// [END region]" part).
    std::vector<std::string> parts = absl::StrSplit(s.path, absl::MaxSplits('#', 1));
    std::string file = ReadFile(parts[0]);
    EXPECT_FALSE(file.empty()) << parts[0] << " not in runfiles";
    std::string want = parts.size() == 2 ? Region(file, parts[1]) : file;
    EXPECT_EQ(s.body, want) << doc_path << "'s block for " << s.path
                            << " differs from the file: update the doc";
  }
  return snippets.size();
}

TEST(SnippetsTest, TutorialCodeBlocksAreTheRealFiles) {
  EXPECT_GE(CheckDoc("docs/tutorial.md"), 3u);
}

TEST(SnippetsTest, EmbeddingCodeBlocksAreTheRealFiles) {
  EXPECT_GE(CheckDoc("docs/embedding.md"), 2u);
}

TEST(SnippetsTest, NamingCodeBlocksAreTheRealFiles) {
  EXPECT_GE(CheckDoc("docs/naming.md"), 2u);
}

}  // namespace
}  // namespace bevrpc
