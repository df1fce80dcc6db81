// The standard Prometheus process metrics, read from /proc when scraped,
// plus bevrpc_build_info:
//
//   process_cpu_seconds_total       user + system CPU time (counter)
//   process_resident_memory_bytes   RSS (gauge)
//   process_virtual_memory_bytes    virtual memory size (gauge)
//   process_open_fds                open file descriptors (gauge)
//   process_max_fds                 RLIMIT_NOFILE soft limit (gauge)
//   process_start_time_seconds      start time, Unix seconds (gauge)
//   bevrpc_build_info{version="0.1.0"} 1   (gauge; build_info.h)
//
//   absl::Status s = RegisterProcessMetrics(&MetricsRegistry::Default());
//
// Calling it again on the same registry does nothing. A value that cannot
// be read (no /proc) is reported as NaN. Thread-safe.
#ifndef BEVRPC_RPC_METRICS_PROCESS_METRICS_H_
#define BEVRPC_RPC_METRICS_PROCESS_METRICS_H_

#include "absl/status/status.h"
#include "rpc/metrics/metrics.h"

namespace bevrpc::metrics {

// Adds the families above to `registry` (borrowed; the callbacks live as
// long as it does).
absl::Status RegisterProcessMetrics(MetricsRegistry* registry);

}  // namespace bevrpc::metrics

#endif  // BEVRPC_RPC_METRICS_PROCESS_METRICS_H_
