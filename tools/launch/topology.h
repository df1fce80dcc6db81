// Loading and checking a launch topology (tools/launch/topology.proto, in
// protobuf text format) into a LaunchPlan: services in dependency order
// with absolute binary paths and parsed durations.
//
//   absl::StatusOr<LaunchPlan> plan =
//       LoadTopology("services/shortener/topology.textproto", "bazel-bin");
//   if (!plan.ok()) { std::cerr << plan.status().message(); return 2; }
//   for (const ServiceSpec& s : plan->services) ...   // dependencies first
//
// Errors are INVALID_ARGUMENT (NOT_FOUND for an unreadable file) and name
// the file and line (syntax), or the service and field: an unknown binary,
// a duplicate name, an unknown depends_on, a dependency cycle, a bad
// duration, an unknown substitution. Pure functions; thread-safe.
#ifndef BEVRPC_TOOLS_LAUNCH_TOPOLOGY_H_
#define BEVRPC_TOOLS_LAUNCH_TOPOLOGY_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tools/launch/substitution.h"
#include "tools/launch/topology.pb.h"

namespace bevrpc::launch {

// One service of the topology, checked.
struct ServiceSpec {
  std::string name;
  std::string binary;  // Absolute path.
  std::vector<std::string> args;  // Unexpanded.
  std::vector<std::pair<std::string, std::string>> env;  // Sorted by name.
  int replicas = 1;
  int base_port = 0;  // 0: pick a free port per replica.
  std::vector<std::string> depends_on;
  Restart restart = ALWAYS;
  std::string health_service;  // Readiness by health check (log_line empty).
  std::string log_line;        // Readiness by output line, if not empty.
  absl::Duration ready_timeout = absl::Seconds(30);
  absl::Duration stop_grace = absl::Seconds(10);
};

struct LaunchPlan {
  std::string registry;  // "" = file mode; else "etcd://H:P/PREFIX".
  std::string host = "127.0.0.1";
  std::vector<ServiceSpec> services;  // Every service after its dependencies.

  // The index of service `name` in `services`, or -1.
  int Find(absl::string_view name) const;
  bool etcd_mode() const { return !registry.empty(); }
};

// Text format to message; errors name `filename` and the line.
absl::StatusOr<Topology> ParseTopologyText(absl::string_view text,
                                           absl::string_view filename);

// Checks `topology` and orders it. Relative binaries resolve against
// `bin_dir` (itself relative to the working directory); each must be an
// executable file.
absl::StatusOr<LaunchPlan> BuildPlan(const Topology& topology,
                                     absl::string_view bin_dir);

// Reads `path`, then ParseTopologyText() and BuildPlan().
absl::StatusOr<LaunchPlan> LoadTopology(absl::string_view path,
                                        absl::string_view bin_dir);

// Where a replica's substitutions point.
struct ReplicaPlace {
  int replica = 0;
  int port = 0;
  std::string dir;  // {dir}
};

// The substitution values of `service`'s replica at `place`; {target:SVC}
// uses `target_of` (given the service name, known to be in `plan`).
SubstitutionValues ReplicaValues(
    const LaunchPlan& plan, const ServiceSpec& service,
    const ReplicaPlace& place,
    std::function<std::string(absl::string_view)> target_of);

// `service`'s args and env, expanded with `values`; errors name the
// service and the argument.
absl::StatusOr<std::vector<std::string>> ExpandArgs(
    const ServiceSpec& service, const SubstitutionValues& values);
absl::StatusOr<std::vector<std::string>> ExpandEnv(  // "NAME=VALUE"
    const ServiceSpec& service, const SubstitutionValues& values);

// etcd mode: the registry target of service `name`, "etcd://H:P/PREFIX/NAME".
std::string RegistryTarget(const LaunchPlan& plan, absl::string_view name);

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_TOPOLOGY_H_
