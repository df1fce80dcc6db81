// The echo service's handlers, registered on a Server.
//
//   Server server(options);
//   RegisterEchoService(server);
//
// Echo answers with the request's message after `delay_ms` (waiting on a
// loop timer, never blocking the I/O thread), or fails with `fail_code` /
// `fail_message` when `fail_code` is non-zero. Thread-safe (stateless).
#ifndef BEVRPC_SERVICES_ECHO_ECHO_SERVICE_H_
#define BEVRPC_SERVICES_ECHO_ECHO_SERVICE_H_

#include "absl/status/status.h"
#include "rpc/server.h"

namespace bevrpc::echo {

inline constexpr char kEchoMethod[] = "bevrpc.echo.Echo/Echo";

absl::Status RegisterEchoService(Server& server);

}  // namespace bevrpc::echo

#endif  // BEVRPC_SERVICES_ECHO_ECHO_SERVICE_H_
