// The bevrpc command-line client: one tool to list, describe, call,
// health-check and load-test bevrpc servers.
//
//   bevrpc list 127.0.0.1:8080
//   bevrpc describe 127.0.0.1:8080 bevrpc.echo.EchoRequest
//   bevrpc call 127.0.0.1:8080 bevrpc.echo.Echo/Echo '{"message":"hi"}'
//   bevrpc health 127.0.0.1:8080
//   bevrpc bench 127.0.0.1:8080 bevrpc.echo.Echo/Echo '{"message":"hi"}' -c 16 -z 5s
//
// RunCli() is the whole program minus main(), for tests. Exit codes are in
// docs/cli.md. Single-threaded caller.
#ifndef BEVRPC_TOOLS_CLI_CLI_H_
#define BEVRPC_TOOLS_CLI_CLI_H_

#include <iosfwd>
#include <string>
#include <vector>

namespace bevrpc::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitNotServing = 1;  // health: reachable, not SERVING
inline constexpr int kExitUsage = 2;
inline constexpr int kExitBadInput = 3;
inline constexpr int kExitRpcBase = 64;    // + canonical code of a failed call

// Runs one command; `args` excludes the program name.
int RunCli(const std::vector<std::string>& args, std::istream& in,
           std::ostream& out, std::ostream& err);

}  // namespace bevrpc::cli

#endif  // BEVRPC_TOOLS_CLI_CLI_H_
