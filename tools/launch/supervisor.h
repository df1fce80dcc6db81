// Supervisor: runs every replica of a LaunchPlan, keeps them running, and
// keeps each service's endpoints file (file mode) listing its ready ones.
//
//   auto sup = Supervisor::Create(std::move(plan), options).value();
//   sup->Start();                              // dependency order
//   absl::Status s = sup->WaitStartup(absl::InfiniteDuration());
//   sup->RollingRestartAll();                  // on SIGHUP
//   StatusResponse st = sup->Status();         // for the control service
//   sup->Shutdown();                           // reverse order; blocks
//
// Lifecycle of a replica (ProcessStatus.State): STOPPED -> STARTING (forked;
// readiness: health Check or a log line, within readiness.timeout) ->
// RUNNING (listed) -> on an unexpected exit BACKOFF (restart policy,
// RestartBackoff) -> STARTING ... or FATAL after repeated fast failures.
// Stop: STOPPING (SIGTERM to its process group, SIGKILL after stop_grace)
// -> STOPPED. A replica leaves the endpoints file as soon as it is no
// longer RUNNING, or when a rolling restart drains it.
//
// Threading: one supervisor thread forks (so PR_SET_PDEATHSIG, which fires
// when the forking thread exits, lasts as long as the launcher), reaps,
// signals and writes endpoints files. All replica state is guarded by one
// mutex, `mu_`; the public methods are thread-safe and only record intents
// (start, stop, restart, shut down) under it for the supervisor thread to
// act on; Status() reads under it. Health probes run on a small loop pool
// and publish their result through an atomic, never taking `mu_`.
#ifndef BEVRPC_TOOLS_LAUNCH_SUPERVISOR_H_
#define BEVRPC_TOOLS_LAUNCH_SUPERVISOR_H_

#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/launch/backoff.h"
#include "tools/launch/launcher.pb.h"
#include "tools/launch/output_pump.h"
#include "tools/launch/replica_log.h"
#include "tools/launch/topology.h"
#include "transport/loop_pool.h"
#include "transport/sync.h"

namespace bevrpc::launch {

struct SupervisorOptions {
  // Absolute directory for endpoints/, logs/ and run/ (the {dir}s).
  // Required.
  std::string state_dir;
  // Restart delays and giving up. Default: see BackoffPolicy.
  BackoffPolicy backoff;
  // Rolling restart: how long a replica stays out of its endpoints file
  // before it is sent SIGTERM, so that file:/// resolvers (which poll
  // every 250 ms) stop picking it. Default: 2 s.
  absl::Duration drain_delay = absl::Seconds(2);
  // Health probes of a starting replica: one every probe_interval, each
  // given probe_timeout. Default: 100 ms, 1 s.
  absl::Duration probe_interval = absl::Milliseconds(100);
  absl::Duration probe_timeout = absl::Seconds(1);
  // Child output: longest line kept whole; log size before rotation.
  // Default: 16 KiB, 10 MiB.
  size_t max_line_bytes = 16 * 1024;
  size_t max_log_bytes = 10 * 1024 * 1024;
  // Copy child output to our stdout as "service/replica | line".
  // Default: true.
  bool echo_output = true;
};

class Supervisor {
 public:
  // Picks free ports (port 0), expands every replica's args, creates the
  // state dir's subdirectories and (file mode) empty endpoints files.
  // Starts nothing.
  static absl::StatusOr<std::unique_ptr<Supervisor>> Create(
      LaunchPlan plan, SupervisorOptions options);
  // Shutdown() if needed, then stops the threads.
  ~Supervisor();

  // Starts the supervisor thread: services start in dependency order.
  void Start();
  // Until every replica is RUNNING (OK), one is FATAL before that
  // (FAILED_PRECONDITION naming it), or `timeout` (DEADLINE_EXCEEDED).
  absl::Status WaitStartup(absl::Duration timeout);
  // SIGHUP: a rolling restart of every replica, one at a time, in
  // dependency order. While one runs, another is coalesced into it
  // (logged). Returns at once.
  void RollingRestartAll();
  // Stops everything in reverse dependency order and waits for it.
  void Shutdown();

  // Control service operations; `replica` empty means all. NOT_FOUND for
  // an unknown service or replica. They return once the intent is
  // recorded.
  StatusResponse Status() const;
  absl::Status Restart(const std::string& service,
                       std::optional<uint32_t> replica);
  absl::Status Stop(const std::string& service,
                    std::optional<uint32_t> replica);
  absl::Status StartReplicas(const std::string& service,
                             std::optional<uint32_t> replica);

  // The target listing `service`'s ready replicas.
  std::string TargetOf(absl::string_view service) const;
  int num_processes() const { return static_cast<int>(replicas_.size()); }
  int num_services() const { return static_cast<int>(plan_.services.size()); }

 private:
  struct Probe;
  struct Replica;
  using State = ProcessStatus::State;

  Supervisor(LaunchPlan plan, SupervisorOptions options);
  absl::Status Prepare();
  absl::Status PrepareReplica(int service, int index);

  void Run();
  void Tick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reap(Replica& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnExit(Replica& r, int wait_status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnUnexpectedExit(Replica& r, int wait_status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Advance(Replica& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceStarting(Replica& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceRolling() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BeginRollingStep() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndRollingStep(absl::string_view how) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceShutdown() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckStartup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Spawn(Replica& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendStop(Replica& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartProbe(Replica& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetState(Replica& r, State state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool DepsRunning(const ServiceSpec& s) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteEndpoints() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Indices into replicas_ named by `service` and `replica`.
  absl::StatusOr<std::vector<int>> Select(const std::string& service,
                                          std::optional<uint32_t> replica) const;
  void OnLine(uint64_t key, absl::string_view line);
  void Log(absl::string_view message) const;
  std::string Name(const Replica& r) const;

  const LaunchPlan plan_;
  const SupervisorOptions options_;

  mutable Mutex mu_;
  CondVar cv_;
  // One per replica, services in plan order; the vector never changes
  // size after Create(), its elements' fields are guarded by mu_.
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::set<int> picked_ports_;  // Create() only.
  // Per service, the endpoints file text last written (file mode).
  std::vector<std::string> written_ ABSL_GUARDED_BY(mu_);
  std::deque<int> rolling_queue_ ABSL_GUARDED_BY(mu_);
  int rolling_current_ ABSL_GUARDED_BY(mu_) = -1;  // A replicas_ index.
  enum class Rolling { kDraining, kStopping, kStarting };
  Rolling rolling_phase_ ABSL_GUARDED_BY(mu_) = Rolling::kDraining;
  absl::Time rolling_drain_until_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  int shutdown_service_ ABSL_GUARDED_BY(mu_) = -1;  // Stopping this one.
  bool shutdown_done_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  std::string startup_error_ ABSL_GUARDED_BY(mu_);
  // Finished or abandoned probes, destroyed outside mu_.
  std::vector<std::unique_ptr<Probe>> dead_probes_ ABSL_GUARDED_BY(mu_);

  // Output: logs are written by the pump's thread only.
  std::vector<std::unique_ptr<ReplicaLog>> logs_;
  std::unique_ptr<transport::LoopPool> probe_loops_;
  std::unique_ptr<OutputPump> pump_;
  std::thread thread_;
};

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_SUPERVISOR_H_
