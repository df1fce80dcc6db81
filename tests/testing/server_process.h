// ServerProcess runs a server binary as a child process for end-to-end tests.
//
// The binary is found in the test's runfiles, started with the given flags,
// and considered ready once it prints `listening on 127.0.0.1:PORT` on stdout.
// Stop() (or the destructor) sends SIGTERM, waits a bounded time for a
// graceful exit, and falls back to SIGKILL. Every wait is bounded.
//
// Example:
//   absl::StatusOr<std::unique_ptr<ServerProcess>> server =
//       ServerProcess::Start("services/echo/echo_server",
//                            {"--port=0", "--threads=2"});
//   ASSERT_TRUE(server.ok()) << server.status();
//   Connect to (*server)->port() ...
//   EXPECT_TRUE((*server)->Stop().ok());  // exit status 0 after SIGTERM
#ifndef BEVRPC_TESTS_TESTING_SERVER_PROCESS_H_
#define BEVRPC_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bevrpc {
namespace testing {

// Returns the absolute path of `runfiles_path` (e.g.
// "services/echo/echo_server") inside the test's runfiles, using
// $TEST_SRCDIR (or $RUNFILES_DIR) and the workspace name "bevrpc".
absl::StatusOr<std::string> RunfilePath(absl::string_view runfiles_path);

// A running child server. Not thread-safe: use from one test thread.
class ServerProcess {
 public:
  // Starts the binary at `runfiles_path` with `args` (argv[0] is added) and
  // waits up to `startup_timeout` for the "listening on 127.0.0.1:PORT" line.
  // The child's stderr is the test's stderr; stdout after the ready line is
  // copied to the test's stderr.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      absl::string_view runfiles_path, const std::vector<std::string>& args,
      absl::Duration startup_timeout = absl::Seconds(10));

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Stops the server (see Stop()) if it is still running.
  ~ServerProcess();

  // The port from the ready line.
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // True while the child has not exited. Reaps it if it has.
  bool IsRunning();

  // Sends SIGTERM and waits up to `grace` for the child to exit, then sends
  // SIGKILL. Returns OK only if the child exited by itself with status 0;
  // otherwise an error that says how it ended. Calling it again returns the
  // same result.
  absl::Status Stop(absl::Duration grace = absl::Seconds(10));

 private:
  ServerProcess(pid_t pid, int stdout_fd, int port);

  // Records the wait status of the exited child.
  void Reaped(int wait_status);
  // Copies the child's remaining stdout to our stderr until asked to stop.
  void ForwardStdout();

  pid_t pid_;
  int stdout_fd_;
  int port_;
  bool exited_ = false;
  int wait_status_ = 0;
  absl::Status stop_status_;
  bool stopped_ = false;
  std::atomic<bool> stop_forwarding_{false};
  std::thread forwarder_;
};

}  // namespace testing
}  // namespace bevrpc

#endif  // BEVRPC_TESTS_TESTING_SERVER_PROCESS_H_
