// The file:/// endpoints file of one service (docs/naming.md): the ready
// replicas, one per line "HOST:PORT id=SERVICE/REPLICA", replaced
// atomically (written to PATH.tmp, then renamed over PATH) so a resolver
// polling it never reads half a file.
//
//   WriteEndpointsFile("/state/endpoints/kv",
//                      {{"127.0.0.1:4001", "kv/0"}, {"127.0.0.1:4002", "kv/1"}});
//
// Thread-compatible: one writer per path (the supervisor).
#ifndef BEVRPC_TOOLS_LAUNCH_ENDPOINTS_FILE_H_
#define BEVRPC_TOOLS_LAUNCH_ENDPOINTS_FILE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bevrpc::launch {

struct EndpointLine {
  std::string address;  // HOST:PORT ([V6]:PORT)
  std::string id;       // SERVICE/REPLICA
};

// The file's text: a comment line, then one line per endpoint.
std::string FormatEndpoints(absl::string_view service,
                            const std::vector<EndpointLine>& endpoints);

// Replaces `path` with FormatEndpoints(); errors name the path.
absl::Status WriteEndpointsFile(const std::string& path,
                                absl::string_view service,
                                const std::vector<EndpointLine>& endpoints);

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_ENDPOINTS_FILE_H_
