// The command line of bevrpc-launch:
//
//   bevrpc-launch TOPOLOGY.textproto [--control=HOST:PORT] [--bin_dir=DIR]
//       [--state_dir=DIR] [--emit_systemd=DIR] [--drain_delay=DURATION]
//
// Flags take "--name=value" or "--name value". A bad or unknown flag, or a
// missing or second topology, is INVALID_ARGUMENT naming it (the launcher
// exits 2). Pure function; thread-safe.
#ifndef BEVRPC_TOOLS_LAUNCH_LAUNCH_FLAGS_H_
#define BEVRPC_TOOLS_LAUNCH_LAUNCH_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace bevrpc::launch {

inline constexpr char kLaunchUsage[] =
    "usage: bevrpc-launch TOPOLOGY.textproto [--control=HOST:PORT]\n"
    "    [--bin_dir=DIR] [--state_dir=DIR] [--emit_systemd=DIR]\n"
    "    [--drain_delay=DURATION]\n"
    "  --control       control service address (bevrpc.launch.Launcher);\n"
    "                  port 0 picks a free one. Default: 127.0.0.1:0\n"
    "  --bin_dir       where relative binary paths resolve. Default: bazel-bin\n"
    "  --state_dir     endpoints files, logs, per-replica dirs.\n"
    "                  Default: a new directory under $TMPDIR (printed)\n"
    "  --emit_systemd  write systemd units to DIR and exit (starts nothing)\n"
    "  --drain_delay   rolling restart: time out of the endpoints list\n"
    "                  before SIGTERM. Default: 2s\n";

struct LaunchFlags {
  std::string topology;
  std::string control = "127.0.0.1:0";
  std::string bin_dir = "bazel-bin";
  std::string state_dir;     // "" = a new temporary directory.
  std::string emit_systemd;  // "" = run the topology.
  absl::Duration drain_delay = absl::Seconds(2);
};

// `args` without argv[0].
absl::StatusOr<LaunchFlags> ParseLaunchFlags(
    const std::vector<std::string>& args);

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_LAUNCH_FLAGS_H_
