#include "tools/protoc-gen-bevrpc/code_format.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace bevrpc::protoc_gen {
namespace {

// True if every line of `lines` fits in kMaxColumns.
bool Fits(absl::string_view lines) {
  for (absl::string_view line : absl::StrSplit(lines, '\n')) {
    if (line.size() > kMaxColumns) return false;
  }
  return true;
}

// `args` after `first_prefix`, continued on lines indented `indent`: commas
// after all but the last, `tail` after the last, then '\n'.
std::string Pack(absl::string_view first_prefix, int indent,
                 const std::vector<std::string>& args, absl::string_view tail,
                 Packing packing) {
  std::string out(first_prefix);
  size_t line_start = 0;
  bool line_has_arg = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string piece =
        absl::StrCat(args[i], i + 1 < args.size() ? "," : tail);
    const size_t width = out.size() - line_start + 1 + piece.size();
    if (line_has_arg &&
        (packing == Packing::kOnePerLine || width > kMaxColumns)) {
      out.push_back('\n');
      line_start = out.size();
      out.append(indent, ' ');
      line_has_arg = false;
    }
    if (line_has_arg) out.push_back(' ');
    out.append(piece);
    line_has_arg = true;
  }
  out.push_back('\n');
  return out;
}

}  // namespace

std::string WrapCall(int indent, absl::string_view head,
                     const std::vector<std::string>& args,
                     absl::string_view tail, Packing packing) {
  const std::string margin(indent, ' ');
  std::string one_line =
      absl::StrCat(margin, head, absl::StrJoin(args, ", "), tail, "\n");
  if (args.empty() || Fits(one_line)) return one_line;
  std::string aligned = Pack(absl::StrCat(margin, head), indent + head.size(),
                             args, tail, packing);
  if (Fits(aligned)) return aligned;
  // Break after the opening parenthesis; declarations whose parameters all
  // fit on the next line keep them together.
  const std::string first = absl::StrCat(margin, head, "\n");
  const std::string next_margin(indent + 4, ' ');
  std::string together =
      absl::StrCat(next_margin, absl::StrJoin(args, ", "), tail, "\n");
  if (Fits(together)) return first + together;
  return first + Pack(next_margin, indent + 4, args, tail, packing);
}

std::string WrapFunction(int indent, absl::string_view return_type,
                         absl::string_view name,
                         const std::vector<std::string>& params,
                         absl::string_view tail) {
  std::string joined =
      WrapCall(indent, absl::StrCat(return_type, " ", name, "("), params, tail);
  if (Fits(joined)) return joined;
  return absl::StrCat(std::string(indent, ' '), return_type, "\n",
                      WrapCall(indent, absl::StrCat(name, "("), params, tail));
}

std::string WrapAssignment(int indent, absl::string_view lhs,
                           absl::string_view rhs) {
  const std::string margin(indent, ' ');
  std::string one_line = absl::StrCat(margin, lhs, " = ", rhs, ";\n");
  if (Fits(one_line)) return one_line;
  return absl::StrCat(margin, lhs, " =\n", margin, "    ", rhs, ";\n");
}

std::string CommentBlock(int indent, absl::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  for (std::string& line : lines) {
    absl::StripTrailingAsciiWhitespace(&line);
    while (!line.empty() && line.back() == '\\') {
      line.pop_back();
      absl::StripTrailingAsciiWhitespace(&line);
    }
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    absl::StrAppend(&out, std::string(indent, ' '), "//", line, "\n");
  }
  return out;
}

}  // namespace bevrpc::protoc_gen
