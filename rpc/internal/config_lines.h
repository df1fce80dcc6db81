// ForEachConfigLine: the line loop of bevrpc's small text config files
// (bearer tokens, certificate rules, tenant limits, endpoints): split into
// lines, strip surrounding whitespace, skip blank lines and '#' comments,
// and hand each remaining line to a callback with its 1-based line number
// for error messages.
//
//   absl::Status s = internal::ForEachConfigLine(
//       text, [&](int line_number, absl::string_view line) -> absl::Status {
//         if (!Good(line)) {
//           return absl::InvalidArgumentError(
//               absl::StrCat("line ", line_number, ": why"));
//         }
//         return absl::OkStatus();
//       });
//
// The callback writes its own messages (each file format says different
// things about a bad line); this only keeps the numbering right. `text`
// and the views passed to the callback are borrowed: the views point into
// `text` and are valid while it is. A pure function: any thread may call.
#ifndef BEVRPC_RPC_INTERNAL_CONFIG_LINES_H_
#define BEVRPC_RPC_INTERNAL_CONFIG_LINES_H_

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bevrpc::internal {

struct ConfigLineOptions {
  // Whether a '#' anywhere in a line starts a comment that runs to the end
  // of the line. When false only a line whose first non-blank character is
  // '#' is a comment, and a '#' further on is data (tokens may contain
  // one). Default: false.
  bool trailing_comments = false;
};

// Calls `fn(line_number, line)` for every line of `text` ('\n'-separated;
// a '\r' before it is stripped as whitespace) that is not blank or a
// comment, with ASCII whitespace stripped from both ends. Line numbers
// count every line, skipped ones included, from 1. Stops at the first
// non-OK status `fn` returns and returns it; OK when every call was.
absl::Status ForEachConfigLine(
    absl::string_view text,
    absl::FunctionRef<absl::Status(int line_number, absl::string_view line)> fn,
    ConfigLineOptions options = {});

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CONFIG_LINES_H_
