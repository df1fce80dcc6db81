#include "rpc/internal/config_lines.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace bevrpc::internal {

absl::Status ForEachConfigLine(
    absl::string_view text,
    absl::FunctionRef<absl::Status(int line_number, absl::string_view line)> fn,
    ConfigLineOptions options) {
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (options.trailing_comments) {
      const size_t hash = line.find('#');
      if (hash != absl::string_view::npos) line = line.substr(0, hash);
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    absl::Status s = fn(line_number, line);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace bevrpc::internal
