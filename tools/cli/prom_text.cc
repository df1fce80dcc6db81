#include "tools/cli/prom_text.h"

#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace bevrpc::cli {
namespace {

bool IsNameStart(char c) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         c == ':';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || absl::ascii_isdigit(static_cast<unsigned char>(c));
}

// Reads a name at the front of `s` (advancing it); "" when there is none.
absl::string_view TakeName(absl::string_view* s) {
  size_t n = 0;
  if (!s->empty() && IsNameStart((*s)[0])) {
    n = 1;
    while (n < s->size() && IsNameChar((*s)[n])) ++n;
  }
  absl::string_view name = s->substr(0, n);
  s->remove_prefix(n);
  return name;
}

void SkipSpaces(absl::string_view* s) {
  while (!s->empty() && ((*s)[0] == ' ' || (*s)[0] == '\t')) s->remove_prefix(1);
}

bool ParseValue(absl::string_view text, double* out) {
  if (text == "+Inf" || text == "Inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    *out = std::nan("");
    return true;
  }
  return absl::SimpleAtod(text, out);
}

// Parses `{a="x",b="y"}` (the leading '{' already seen by the caller, who
// passes the text after it).
bool ParseLabels(absl::string_view* s,
                 std::vector<std::pair<std::string, std::string>>* out) {
  for (;;) {
    SkipSpaces(s);
    if (!s->empty() && (*s)[0] == '}') {
      s->remove_prefix(1);
      return true;
    }
    absl::string_view key = TakeName(s);
    if (key.empty()) return false;
    SkipSpaces(s);
    if (s->size() < 2 || (*s)[0] != '=' || (*s)[1] != '"') return false;
    s->remove_prefix(2);
    std::string value;
    for (;;) {
      if (s->empty()) return false;
      char c = (*s)[0];
      s->remove_prefix(1);
      if (c == '"') break;
      if (c == '\\') {
        if (s->empty()) return false;
        char e = (*s)[0];
        s->remove_prefix(1);
        if (e == 'n') {
          value.push_back('\n');
        } else if (e == '\\' || e == '"') {
          value.push_back(e);
        } else {
          return false;
        }
        continue;
      }
      value.push_back(c);
    }
    out->emplace_back(std::string(key), std::move(value));
    SkipSpaces(s);
    if (!s->empty() && (*s)[0] == ',') s->remove_prefix(1);
  }
}

}  // namespace

absl::string_view PromSample::Label(absl::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return "";
}

absl::StatusOr<std::vector<PromSample>> ParsePrometheusText(
    absl::string_view text) {
  std::vector<PromSample> samples;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    absl::string_view s = line;
    SkipSpaces(&s);
    if (s.empty() || s[0] == '#') continue;
    PromSample sample;
    absl::string_view name = TakeName(&s);
    bool ok = !name.empty();
    if (ok) sample.name = std::string(name);
    if (ok && !s.empty() && s[0] == '{') {
      s.remove_prefix(1);
      ok = ParseLabels(&s, &sample.labels);
    }
    if (ok) {
      SkipSpaces(&s);
      absl::string_view value = s.substr(0, s.find_first_of(" \t"));
      ok = !value.empty() && ParseValue(value, &sample.value);
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics page line ", line_no, " is not a sample: \"",
                       line.substr(0, 200), "\""));
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

}  // namespace bevrpc::cli
