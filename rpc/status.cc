#include "rpc/status.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace bevrpc {
namespace {

constexpr int kMaxCanonicalCode = 16;  // UNAUTHENTICATED

}  // namespace

absl::Status StatusFromWire(int32_t code, absl::string_view message) {
  if (code < 0 || code > kMaxCanonicalCode) {
    return absl::UnknownError(
        absl::StrCat("peer sent unknown status code ", code, ": ", message));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

std::string StatusCodeName(absl::StatusCode code) {
  int n = static_cast<int>(code);
  if (n < 0 || n > kMaxCanonicalCode) return absl::StrCat("CODE_", n);
  return absl::StatusCodeToString(code);
}

bool ParseStatusCode(absl::string_view text, absl::StatusCode* code) {
  int n;
  if (absl::SimpleAtoi(text, &n)) {
    if (n < 0 || n > kMaxCanonicalCode) return false;
    *code = static_cast<absl::StatusCode>(n);
    return true;
  }
  std::string upper = absl::AsciiStrToUpper(text);
  for (int i = 0; i <= kMaxCanonicalCode; ++i) {
    auto c = static_cast<absl::StatusCode>(i);
    if (absl::StatusCodeToString(c) == upper) {
      *code = c;
      return true;
    }
  }
  return false;
}

}  // namespace bevrpc
