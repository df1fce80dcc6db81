// FaultInjection: rules that make a server fail or slow down a share of its
// calls on purpose, to test how clients and the rest of a system cope
// (Envoy's fault filter, gRPC's xDS fault injection). Plain option structs,
// part of ServerOptions; docs/resilience.md, "Fault injection".
//
//   ServerOptions options;
//   options.fault_injection.aborts.push_back(
//       {.method = "*", .percent = 10, .code = absl::StatusCode::kUnavailable});
//   options.fault_injection.delays.push_back(
//       {.method = "kv.Kv/Get", .percent = 50, .delay = absl::Milliseconds(20)});
//
// Rules apply after the method is known and before the call reaches its
// handler: an aborted call is answered at once with the rule's status and
// its handler never runs (nor does it count against max_concurrent_calls);
// a delayed call is admitted, then dispatched `delay` later from a timer on
// its I/O loop (no thread waits), and may meanwhile be cancelled or time
// out like any call. A call is first rolled for an abort, then for a delay.
// The server checks the rules at Start() (a rule for a method that is not
// registered, a percent outside [0, 100], a negative delay or an abort with
// OK fail Start() with INVALID_ARGUMENT) and prints one line per rule to
// stderr when it starts, so that a server injecting faults is never
// mistaken for a healthy one.
//
// Thread-compatible plain values.
#ifndef BEVRPC_RPC_FAULT_INJECTION_H_
#define BEVRPC_RPC_FAULT_INJECTION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace bevrpc {

// Fails `percent` % of the calls of `method` with `code`.
struct FaultAbort {
  // "package.Service/Method", or "*" for every method without a rule of its
  // own (an exact name wins over "*"). Default: "*".
  std::string method = "*";
  // Share of calls aborted, 0 to 100 (fractions allowed). Default: 100.
  double percent = 100;
  // The status code of aborted calls; not OK. Default: UNAVAILABLE.
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  // The status message; empty means "fault injected: ..." naming the rule.
  // Default: empty.
  std::string message;
};

// Delays the dispatch of `percent` % of the calls of `method` by `delay`.
struct FaultDelay {
  // As FaultAbort::method. Default: "*".
  std::string method = "*";
  // Share of calls delayed, 0 to 100. Default: 100.
  double percent = 100;
  // How long a delayed call waits before its handler starts; >= 0.
  // Default: 0.
  absl::Duration delay = absl::ZeroDuration();
};

struct FaultInjection {
  // At most one rule per method name (and one "*") in each list. Default:
  // none (fault injection off).
  std::vector<FaultAbort> aborts;
  std::vector<FaultDelay> delays;

  bool enabled() const { return !aborts.empty() || !delays.empty(); }
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_FAULT_INJECTION_H_
