// Expands the {name} substitutions of topology args and env values
// (tools/launch/topology.proto lists them).
//
//   SubstitutionValues v;
//   v.values = {{"port", "8080"}, {"id", "kv/0"}};
//   v.target = [](absl::string_view svc) { return "file:///s/endpoints/" + ...; };
//   absl::StatusOr<std::string> arg = Expand("--port={port}", v);  // "--port=8080"
//
// `{{` and `}}` are literal braces. An unknown name, an unclosed `{` or a
// lone `}` is INVALID_ARGUMENT naming it. Pure functions; thread-safe.
#ifndef BEVRPC_TOOLS_LAUNCH_SUBSTITUTION_H_
#define BEVRPC_TOOLS_LAUNCH_SUBSTITUTION_H_

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bevrpc::launch {

struct SubstitutionValues {
  // Plain names ("port", "host", "replica", "name", "id", "dir",
  // "register") and their values.
  std::map<std::string, std::string> values;
  // {target:SVC}: the target of service SVC, or an error (unknown service).
  // Default: none (every {target:...} is an error).
  std::function<absl::StatusOr<std::string>(absl::string_view)> target;
};

absl::StatusOr<std::string> Expand(absl::string_view text,
                                   const SubstitutionValues& values);

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_SUBSTITUTION_H_
