// Starting one replica process: fork/exec in its own process group, with
// its stdout and stderr on one pipe, dying with the launcher.
//
//   ChildSpec spec{"/abs/kv_server", {"kv_server", "--port=4001"}, {"A=1"}};
//   absl::StatusOr<Child> child = SpawnChild(spec);
//   // child->pid (== its process group id), child->output_fd (read end)
//
// In the child, before exec: its own process group (setpgid), signal mask
// and dispositions reset, PR_SET_PDEATHSIG(spec.death_signal), then a
// re-check that the launcher is still its parent (closing the race with a
// launcher that died before the prctl), and every other descriptor
// closed. PDEATHSIG fires when the *thread* that forked exits, so call
// SpawnChild() only from a thread that lives as long as the launcher (the
// supervisor's). exec failures are reported as errors here (through a
// close-on-exec status pipe), not as a child that exits 127.
#ifndef BEVRPC_TOOLS_LAUNCH_PROCESS_H_
#define BEVRPC_TOOLS_LAUNCH_PROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bevrpc::launch {

struct ChildSpec {
  std::string binary;              // Absolute path.
  std::vector<std::string> argv;   // argv[0] first.
  std::vector<std::string> env;    // "NAME=VALUE", added to ours.
  int death_signal = SIGKILL;      // Sent to it if the launcher dies.
};

struct Child {
  pid_t pid = 0;        // Also its process group id.
  int output_fd = -1;   // Read end of its stdout+stderr; owned by the caller.
};

absl::StatusOr<Child> SpawnChild(const ChildSpec& spec);

// A wait status as text: "exit 0", "exit 1", "signal 9".
std::string DescribeWaitStatus(int wait_status);

// A free TCP port on `host` now (bind to port 0, read it, close).
absl::StatusOr<int> PickFreePort(const std::string& host);

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_PROCESS_H_
