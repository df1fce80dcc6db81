// --emit_systemd: the same topology as systemd units, for production.
//
//   absl::Status s = EmitSystemdUnits(plan, "/tmp/units");
//   // /tmp/units/bevrpc-kv-0.service, bevrpc-kv-1.service, ...,
//   // /tmp/units/endpoints/kv (file mode: every replica, fixed ports)
//
// One unit per replica, bevrpc-SERVICE-REPLICA.service: ExecStart= with the
// absolute binary and the expanded args, Environment=, Restart= from the
// restart policy (ALWAYS -> always, ON_FAILURE -> on-failure, NEVER -> no),
// RestartSec= the first backoff delay, StartLimitBurst= /
// StartLimitIntervalSec= for giving up after fast failures,
// KillSignal=SIGTERM to the unit's control group and TimeoutStopSec= the
// stop grace (then SIGKILL), After= and Requires= on every replica of each
// depends_on service, StateDirectory= for {dir}.
//
// Ports must be fixed (Service.port != 0): a free port picked at launch
// cannot be written into a unit, and other services' targets must name it.
// {target:SVC} becomes, in file mode, file:///DIR/endpoints/SVC, a static
// list of SVC's replicas written next to the units (install it at that
// path, or use a registry); in etcd mode the etcd target, with replicas
// registering themselves ({register}), the better choice across hosts.
//
// What the launcher deliberately leaves to systemd or Kubernetes: starting
// at boot and ordering against the rest of the system; resource limits and
// isolation (cgroups, namespaces); running as dedicated users with
// restricted privileges; log collection and rotation beyond the launcher's
// one-file bound (journald, a log shipper); scheduling across hosts,
// rolling deployments of new binaries and service discovery beyond one
// machine (a registry such as etcd, or Kubernetes Services). systemd also
// cannot express the launcher's readiness gate (health SERVING before
// dependents start): the units start in order (After=) but without waiting
// for health; clients wait and retry instead (wait_for_ready, retries).
//
// Pure function of its inputs plus file writes; thread-safe.
#ifndef BEVRPC_TOOLS_LAUNCH_SYSTEMD_H_
#define BEVRPC_TOOLS_LAUNCH_SYSTEMD_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tools/launch/backoff.h"
#include "tools/launch/topology.h"

namespace bevrpc::launch {

// The text of replica `replica`'s unit; `out_dir` is where the units (and
// file-mode endpoints lists) go, absolute.
absl::StatusOr<std::string> SystemdUnit(const LaunchPlan& plan,
                                        const ServiceSpec& service,
                                        int replica,
                                        const std::string& out_dir,
                                        const BackoffPolicy& backoff);

// Writes every unit (and, in file mode, OUT_DIR/endpoints/SVC) into
// `out_dir`, created if needed. A service with port 0 is INVALID_ARGUMENT
// naming it; nothing is written then.
absl::Status EmitSystemdUnits(const LaunchPlan& plan,
                              const std::string& out_dir,
                              const BackoffPolicy& backoff = {});

// One ExecStart= word, quoted for systemd ("..." with \ " escaped, % as
// %%, $ as $$).
std::string SystemdQuote(absl::string_view word);

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_SYSTEMD_H_
