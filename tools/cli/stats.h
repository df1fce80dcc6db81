// `bevrpc stats`: per-method QPS, error rate and latency of a server (or of
// every endpoint of a target), computed from two reads of its /metrics page
// an interval apart: the difference of bevrpc_server_handled_total (by
// code) and of bevrpc_server_handling_seconds_bucket (quantiles estimated
// within a bucket as Prometheus' histogram_quantile() does), and the
// current bevrpc_server_in_flight. With side "client" the bevrpc_client_*
// families of the same page are read instead (a server whose handlers call
// other services).
//
// Pure functions; any thread.
#ifndef BEVRPC_TOOLS_CLI_STATS_H_
#define BEVRPC_TOOLS_CLI_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tools/cli/prom_text.h"

namespace bevrpc::cli {

struct MethodStats {
  std::string service;  // "bevrpc.echo.Echo"
  std::string method;   // "Echo"
  double qps = 0;         // calls finished per second in the interval
  double error_rate = 0;  // of those, the share not OK (0..1)
  // Latency quantiles in seconds over the interval; NaN without calls.
  double p50 = 0;
  double p99 = 0;
  double in_flight = 0;  // at the second read
  uint64_t total = 0;    // calls finished since the process started
};

// `before` and `after` are two reads of the same page, `interval` apart.
// Methods are sorted by service, then method. A counter that went down (the
// process restarted between the reads) counts from zero.
std::vector<MethodStats> ComputeStats(const std::vector<PromSample>& before,
                                      const std::vector<PromSample>& after,
                                      absl::Duration interval,
                                      absl::string_view side);

// The q-quantile (0..1) of a histogram given as (upper bound, cumulative
// count) pairs sorted by bound, the last being +Inf; linear within the
// bucket it falls in (the +Inf bucket answers its lower bound). NaN when
// the count is 0.
double BucketQuantile(double q,
                      const std::vector<std::pair<double, double>>& buckets);

// A table: a header line, then one line per method, e.g.
//   METHOD                      QPS   ERR%     P50      P99  INFLIGHT   TOTAL
//   bevrpc.echo.Echo/Echo    1203.0   0.00  0.12ms   1.05ms         3   52211
std::string FormatStatsTable(const std::vector<MethodStats>& stats);

}  // namespace bevrpc::cli

#endif  // BEVRPC_TOOLS_CLI_STATS_H_
