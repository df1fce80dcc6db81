// Per-call settings and metadata, shared by clients and servers.
//
//   CallOptions options;
//   options.timeout = absl::Milliseconds(200);
//   options.metadata["x-request-id"] = "42";
//   channel->Call("bevrpc.echo.Echo/Echo", request, &response, options);
//
// Plain values; thread-compatible.
#ifndef BEVRPC_RPC_CALL_OPTIONS_H_
#define BEVRPC_RPC_CALL_OPTIONS_H_

#include <map>
#include <string>

#include "absl/time/time.h"

namespace bevrpc {

// Request headers or response trailers. Keys are case-sensitive; by
// convention lower-case.
using Metadata = std::map<std::string, std::string>;

struct CallOptions {
  // The call fails with DEADLINE_EXCEEDED after this long; the server is told
  // the remaining budget. Default: no deadline.
  absl::Duration timeout = absl::InfiniteDuration();
  // Request headers sent with the call. Default: none.
  Metadata metadata;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_CALL_OPTIONS_H_
