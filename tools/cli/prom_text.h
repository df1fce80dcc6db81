// A reader of the Prometheus text exposition format (0.0.4), enough for
// `bevrpc stats`: sample lines "name{label="value",...} value [timestamp]"
// with the format's escapes (\\, \", \n in label values). Comment lines
// (# HELP, # TYPE) and blank lines are skipped. Values: floats, +Inf, -Inf,
// NaN.
//
// Pure functions; any thread.
#ifndef BEVRPC_TOOLS_CLI_PROM_TEXT_H_
#define BEVRPC_TOOLS_CLI_PROM_TEXT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bevrpc::cli {

struct PromSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // in page order
  double value = 0;

  // The value of label `key`, or "" when the sample has none.
  absl::string_view Label(absl::string_view key) const;
};

// Parses a whole page. A malformed line is INVALID_ARGUMENT naming its
// line number; nothing is returned for a page with one.
absl::StatusOr<std::vector<PromSample>> ParsePrometheusText(
    absl::string_view text);

}  // namespace bevrpc::cli

#endif  // BEVRPC_TOOLS_CLI_PROM_TEXT_H_
