// Renders a RegistrySnapshot as Prometheus text format 0.0.4 (for
// /metrics) or as JSON (for ?format=json pages and the CLI).
//
//   std::string body;
//   RenderPrometheus(registry.Collect(), &body);
//   // serve with Content-Type: kPrometheusContentType
//
// Prometheus text: per family one "# HELP" line (left out when the help is
// empty; "\" and newlines escaped) and one "# TYPE" line, then its samples.
// Counters are named NAME_total; a histogram is NAME_bucket{...,le="X"}
// lines with cumulative counts at the exported boundaries, ending with
// le="+Inf", then NAME_sum and NAME_count. Label values escape "\", '"' and
// newlines. Numbers: integers below 2^53 print without exponent or
// fraction ("3"), others in the shortest form that reads back exactly
// ("0.0042", "1e-06"), and "+Inf", "-Inf", "NaN". Families come sorted by
// name, series by label values.
//
// JSON: {"time":UNIX_SECONDS,"families":[{"name":..,"type":"counter",
// "help":..,"unit":..,"labels":[..],"series":[{"labels":{NAME:VALUE,..},
// "value":N}]}]}; a histogram series has "count", "sum", "mean", "p50",
// "p90", "p99" and "buckets":[{"le":X,"count":CUMULATIVE},..,{"le":"+Inf",..}]
// in place of "value". Non-finite numbers are the strings "+Inf", "-Inf",
// "NaN" (JSON has no such numbers); a quantile of an empty histogram is
// null.
//
// Functions of their arguments only; thread-safe.
#ifndef BEVRPC_RPC_METRICS_EXPOSITION_H_
#define BEVRPC_RPC_METRICS_EXPOSITION_H_

#include <string>

#include "rpc/metrics/snapshot.h"

namespace bevrpc::metrics {

inline constexpr char kPrometheusContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

// Appends `snapshot` to `out`.
void RenderPrometheus(const RegistrySnapshot& snapshot, std::string* out);
void RenderJson(const RegistrySnapshot& snapshot, std::string* out);

// A sample value as Prometheus writes it (see above).
std::string FormatPrometheusValue(double value);

}  // namespace bevrpc::metrics

#endif  // BEVRPC_RPC_METRICS_EXPOSITION_H_
