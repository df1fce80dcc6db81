// Canonical status codes on the wire, mapped in one place.
//
// Statuses travel as (status_code, status_message) in FrameMeta, using
// absl::StatusCode numbers (the same as gRPC's). Local failures map as:
//   peer gone, refused, GOAWAY before the call started  -> UNAVAILABLE
//   deadline                                            -> DEADLINE_EXCEEDED
//   over a size limit                                   -> RESOURCE_EXHAUSTED
//   malformed frame or request                          -> INVALID_ARGUMENT
//   unknown service or method                           -> UNIMPLEMENTED
//   handler threw or dropped the call                   -> INTERNAL
// Thread-safe (pure functions).
#ifndef BEVRPC_RPC_STATUS_H_
#define BEVRPC_RPC_STATUS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace bevrpc {

// Status from a RESPONSE or GOAWAY frame. Codes outside absl's range become
// UNKNOWN, keeping the number in the message.
absl::Status StatusFromWire(int32_t code, absl::string_view message);

// "DEADLINE_EXCEEDED", ... for every canonical code; "CODE_<n>" otherwise.
std::string StatusCodeName(absl::StatusCode code);

// Parses "DEADLINE_EXCEEDED" or a number; false if neither.
bool ParseStatusCode(absl::string_view text, absl::StatusCode* code);

}  // namespace bevrpc

#endif  // BEVRPC_RPC_STATUS_H_
