#include "tools/launch/substitution.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bevrpc::launch {
namespace {

constexpr absl::string_view kTargetPrefix = "target:";

absl::StatusOr<std::string> Lookup(absl::string_view name,
                                   const SubstitutionValues& v) {
  if (absl::StartsWith(name, kTargetPrefix)) {
    if (!v.target) {
      return absl::InvalidArgumentError(
          absl::StrCat("{", name, "}: no targets here"));
    }
    return v.target(name.substr(kTargetPrefix.size()));
  }
  auto it = v.values.find(std::string(name));
  if (it != v.values.end()) return it->second;
  std::vector<std::string> known;
  for (const auto& [k, unused] : v.values) known.push_back(absl::StrCat("{", k, "}"));
  known.push_back("{target:SERVICE}");
  return absl::InvalidArgumentError(
      absl::StrCat("unknown substitution {", name,
                   "} (known: ", absl::StrJoin(known, " "),
                   "; {{ and }} for literal braces)"));
}

}  // namespace

absl::StatusOr<std::string> Expand(absl::string_view text,
                                   const SubstitutionValues& values) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      out.push_back(c);
      i += 2;
      continue;
    }
    if (c == '}') {
      return absl::InvalidArgumentError(absl::StrCat(
          "lone '}' at offset ", i, " (write }} for a literal brace)"));
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t close = text.find('}', i);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unclosed '{' at offset ", i, " (write {{ for a literal brace)"));
    }
    absl::StatusOr<std::string> value =
        Lookup(text.substr(i + 1, close - i - 1), values);
    if (!value.ok()) return value.status();
    out += *value;
    i = close + 1;
  }
  return out;
}

}  // namespace bevrpc::launch
