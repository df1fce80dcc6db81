#include "tools/launch/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rpc/channel.h"
#include "services/builtin/health.pb.h"
#include "services/builtin/health_service.h"
#include "tools/launch/endpoints_file.h"
#include "tools/launch/process.h"

namespace bevrpc::launch {
namespace {

using health::v1::HealthCheckRequest;
using health::v1::HealthCheckResponse;

constexpr absl::Duration kTick = absl::Milliseconds(20);

// What a health probe found; shared with its callback (never with mu_).
struct ProbeResult {
  HealthCheckRequest request;
  HealthCheckResponse response;
  std::atomic<int> state{0};  // 0: in flight, 1: SERVING, 2: not.
};

std::string HostPort(const std::string& host, int port) {
  return host.find(':') == std::string::npos
             ? absl::StrCat(host, ":", port)
             : absl::StrCat("[", host, "]:", port);
}

int64_t UnixMillis(absl::Time t) {
  return t == absl::InfinitePast() ? 0 : absl::ToUnixMillis(t);
}

}  // namespace

struct Supervisor::Probe {
  std::unique_ptr<Channel> channel;
  std::shared_ptr<ProbeResult> result;
};

struct Supervisor::Replica {
  Replica(int slot, int service, int index, BackoffPolicy policy)
      : slot(slot),
        service(service),
        index(index),
        backoff(policy, getpid() * 131 + slot) {}
  const int slot;     // Index into replicas_.
  const int service;  // Index into plan_.services.
  const int index;
  int port = 0;
  std::string address;
  std::string dir;
  std::vector<std::string> argv;
  std::vector<std::string> env;
  State state = ProcessStatus::STOPPED;
  pid_t pid = 0;
  uint64_t generation = 0;  // Of the current process, for its output.
  absl::Time started = absl::InfinitePast();
  absl::Time ready_deadline = absl::InfiniteFuture();
  absl::Time next_start = absl::InfiniteFuture();
  absl::Time kill_at = absl::InfiniteFuture();
  absl::Time next_probe = absl::InfinitePast();
  uint32_t restarts = 0;
  std::string last_exit;
  bool want_running = true;   // False once stopped by an operator.
  bool pending_start = true;  // Start when STOPPED/FATAL (deps allowing).
  bool started_once = false;
  bool draining = false;            // Rolling restart: unlisted.
  bool restart_after_stop = false;  // Rolling restart: start on exit.
  bool ready_failed = false;        // Killed for not getting ready.
  bool log_ready = false;           // Its readiness line was seen.
  RestartBackoff backoff;
  std::unique_ptr<Probe> probe;
};

// --- construction --------------------------------------------------------

Supervisor::Supervisor(LaunchPlan plan, SupervisorOptions options)
    : plan_(std::move(plan)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Supervisor>> Supervisor::Create(
    LaunchPlan plan, SupervisorOptions options) {
  if (!absl::StartsWith(options.state_dir, "/")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state dir \"", options.state_dir, "\" must be an absolute path"));
  }
  std::unique_ptr<Supervisor> s(
      new Supervisor(std::move(plan), std::move(options)));
  if (absl::Status st = s->Prepare(); !st.ok()) return st;
  return s;
}

absl::Status Supervisor::Prepare() {
  std::error_code ec;
  for (const char* sub : {"endpoints", "logs", "run"}) {
    std::filesystem::create_directories(
        absl::StrCat(options_.state_dir, "/", sub), ec);
    if (ec) {
      return absl::InternalError(absl::StrCat(
          "cannot create ", options_.state_dir, "/", sub, ": ", ec.message()));
    }
  }
  for (int i = 0; i < static_cast<int>(plan_.services.size()); ++i) {
    for (int j = 0; j < plan_.services[i].replicas; ++j) {
      if (absl::Status st = PrepareReplica(i, j); !st.ok()) return st;
    }
  }
  MutexLock lock(&mu_);
  written_.assign(plan_.services.size(), "");
  if (plan_.etcd_mode()) return absl::OkStatus();
  for (const ServiceSpec& s : plan_.services) {
    absl::Status st = WriteEndpointsFile(
        absl::StrCat(options_.state_dir, "/endpoints/", s.name), s.name, {});
    if (!st.ok()) return st;
  }
  for (size_t i = 0; i < plan_.services.size(); ++i) {
    written_[i] = FormatEndpoints(plan_.services[i].name, {});
  }
  return absl::OkStatus();
}

absl::Status Supervisor::PrepareReplica(int service, int index) {
  const ServiceSpec& s = plan_.services[service];
  auto r = std::make_unique<Replica>(static_cast<int>(replicas_.size()),
                                     service, index, options_.backoff);
  if (s.base_port != 0) {
    r->port = s.base_port + index;
  } else {
    do {  // Distinct even if the kernel offers one twice.
      absl::StatusOr<int> port = PickFreePort(plan_.host);
      if (!port.ok()) return port.status();
      r->port = *port;
    } while (!picked_ports_.insert(r->port).second);
  }
  r->address = HostPort(plan_.host, r->port);
  r->dir = absl::StrCat(options_.state_dir, "/run/", s.name, ".", index);
  std::error_code ec;
  std::filesystem::create_directories(r->dir, ec);
  SubstitutionValues values = ReplicaValues(
      plan_, s, ReplicaPlace{index, r->port, r->dir},
      [this](absl::string_view svc) { return TargetOf(svc); });
  absl::StatusOr<std::vector<std::string>> args = ExpandArgs(s, values);
  if (!args.ok()) return args.status();
  absl::StatusOr<std::vector<std::string>> env = ExpandEnv(s, values);
  if (!env.ok()) return env.status();
  r->argv.push_back(s.binary);
  r->argv.insert(r->argv.end(), args->begin(), args->end());
  r->env = *std::move(env);
  logs_.push_back(std::make_unique<ReplicaLog>(
      absl::StrCat(options_.state_dir, "/logs/", s.name, ".", index, ".log"),
      options_.max_log_bytes));
  replicas_.push_back(std::move(r));
  return absl::OkStatus();
}

Supervisor::~Supervisor() {
  if (thread_.joinable()) {
    Shutdown();
    thread_.join();
  }
  std::vector<std::unique_ptr<Probe>> probes;
  {
    MutexLock lock(&mu_);
    for (auto& r : replicas_) {
      if (r->probe) probes.push_back(std::move(r->probe));
    }
    for (auto& p : dead_probes_) probes.push_back(std::move(p));
    dead_probes_.clear();
  }
  probes.clear();  // Channels before the loops they borrow.
  probe_loops_.reset();
  pump_.reset();
}

void Supervisor::Start() {
  probe_loops_ = transport::LoopPool::Start(1, "probe").value();
  pump_ = std::make_unique<OutputPump>(
      OutputPumpOptions{options_.max_line_bytes},
      [this](uint64_t key, absl::string_view line) { OnLine(key, line); });
  thread_ = std::thread([this] { Run(); });
}

// --- the supervisor thread -----------------------------------------------

void Supervisor::Run() {
  mu_.Lock();
  while (true) {
    Tick();
    if (shutdown_done_) break;
    if (!dead_probes_.empty()) {
      std::vector<std::unique_ptr<Probe>> dead;
      dead.swap(dead_probes_);
      mu_.Unlock();
      dead.clear();  // May wait for its loop: never under mu_.
      mu_.Lock();
    }
    cv_.WaitWithTimeout(&mu_, kTick);
  }
  mu_.Unlock();
}

void Supervisor::Tick() {
  for (auto& r : replicas_) Reap(*r);
  for (auto& r : replicas_) Advance(*r);
  AdvanceRolling();
  AdvanceShutdown();
  WriteEndpoints();
  CheckStartup();
}

void Supervisor::Reap(Replica& r) {
  if (r.pid == 0) return;
  siginfo_t info{};
  if (waitid(P_PID, r.pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid == 0) {
    return;
  }
  // Still a zombie, so its group id cannot be reused: end what it left.
  kill(-r.pid, SIGKILL);
  int wait_status = 0;
  waitpid(r.pid, &wait_status, 0);
  OnExit(r, wait_status);
}

void Supervisor::OnExit(Replica& r, int wait_status) {
  r.last_exit = DescribeWaitStatus(wait_status);
  Log(absl::StrCat(Name(r), " (pid ", r.pid, ") ended: ", r.last_exit));
  r.pid = 0;
  if (r.probe) dead_probes_.push_back(std::move(r.probe));
  if (r.state == ProcessStatus::STOPPING) {
    if (r.restart_after_stop && r.want_running && !shutting_down_) {
      r.restart_after_stop = false;
      Spawn(r);
    } else {
      r.restart_after_stop = false;
      SetState(r, ProcessStatus::STOPPED);
    }
    return;
  }
  OnUnexpectedExit(r, wait_status);
}

void Supervisor::OnUnexpectedExit(Replica& r, int wait_status) {
  const ServiceSpec& s = plan_.services[r.service];
  const bool failed = r.ready_failed || !WIFEXITED(wait_status) ||
                      WEXITSTATUS(wait_status) != 0;
  const absl::Duration uptime =
      r.ready_failed ? absl::ZeroDuration() : absl::Now() - r.started;
  r.ready_failed = false;
  if (!r.want_running || shutting_down_ || s.restart == NEVER ||
      (s.restart == ON_FAILURE && !failed)) {
    SetState(r, ProcessStatus::STOPPED);
    Log(absl::StrCat(Name(r), ": not restarted (restart: ",
                     Restart_Name(s.restart), ")"));
    return;
  }
  std::optional<absl::Duration> delay = r.backoff.OnExit(uptime);
  if (!delay) {
    SetState(r, ProcessStatus::FATAL);
    Log(absl::StrCat(Name(r), ": FATAL: gave up after ",
                     options_.backoff.max_fast_failures,
                     " fast failures in a row (last: ", r.last_exit, ")"));
    return;
  }
  r.next_start = absl::Now() + *delay;
  SetState(r, ProcessStatus::BACKOFF);
  Log(absl::StrCat(Name(r), ": restarting in ", absl::FormatDuration(*delay)));
}

void Supervisor::Advance(Replica& r) {
  const absl::Time now = absl::Now();
  switch (r.state) {
    case ProcessStatus::STOPPED:
    case ProcessStatus::FATAL:
      if (r.pending_start && r.want_running && !shutting_down_ &&
          (r.started_once || DepsRunning(plan_.services[r.service]))) {
        Spawn(r);
      }
      break;
    case ProcessStatus::BACKOFF:
      if (!r.want_running || shutting_down_) {
        SetState(r, ProcessStatus::STOPPED);
      } else if (now >= r.next_start) {
        ++r.restarts;
        Spawn(r);
      }
      break;
    case ProcessStatus::STARTING:
      if (!r.want_running) {
        SendStop(r);
      } else {
        AdvanceStarting(r);
      }
      break;
    case ProcessStatus::RUNNING:
      if (!r.want_running) SendStop(r);
      break;
    case ProcessStatus::STOPPING:
      if (now >= r.kill_at) {
        Log(absl::StrCat(Name(r), ": still running after stop_grace: SIGKILL"));
        kill(-r.pid, SIGKILL);
        r.kill_at = absl::InfiniteFuture();
      }
      break;
    default:
      break;
  }
}

void Supervisor::AdvanceStarting(Replica& r) {
  const ServiceSpec& s = plan_.services[r.service];
  const absl::Time now = absl::Now();
  bool ready = false;
  if (!s.log_line.empty()) {
    ready = r.log_ready;
  } else {
    if (r.probe && r.probe->result->state.load() != 0) {
      ready = r.probe->result->state.load() == 1;
      dead_probes_.push_back(std::move(r.probe));
      r.next_probe = now + options_.probe_interval;
    }
    if (!ready && !r.probe && now >= r.next_probe) StartProbe(r);
  }
  if (ready) {
    SetState(r, ProcessStatus::RUNNING);
    Log(absl::StrCat(Name(r), " (pid ", r.pid, ") ready on ", r.address));
    return;
  }
  if (now >= r.ready_deadline) {
    Log(absl::StrCat(Name(r), ": not ready after ",
                     absl::FormatDuration(s.ready_timeout), ": SIGKILL"));
    r.ready_failed = true;
    kill(-r.pid, SIGKILL);
    r.ready_deadline = absl::InfiniteFuture();
  }
}

void Supervisor::StartProbe(Replica& r) {
  ChannelOptions o;
  o.loops = probe_loops_.get();
  o.connect_timeout = options_.probe_timeout;
  o.idempotent_retry.max_attempts = 0;
  o.outlier_detection.enabled = false;
  absl::StatusOr<std::unique_ptr<Channel>> channel =
      Channel::Create(r.address, o);
  if (!channel.ok()) {
    Log(absl::StrCat(Name(r), ": health probe: ", channel.status().message()));
    r.next_probe = absl::Now() + options_.probe_interval;
    return;
  }
  r.probe = std::make_unique<Probe>();
  r.probe->channel = *std::move(channel);
  auto result = std::make_shared<ProbeResult>();
  result->request.set_service(plan_.services[r.service].health_service);
  r.probe->result = result;
  CallOptions call;
  call.timeout = options_.probe_timeout;
  CondVar* cv = &cv_;
  r.probe->channel->CallAsync(
      absl::StrCat(builtin::kHealthService, "/Check"), result->request,
      &result->response, call, [result, cv](absl::Status st) {
        bool serving = st.ok() && result->response.status() ==
                                      HealthCheckResponse::SERVING;
        result->state.store(serving ? 1 : 2);
        cv->Signal();
      });
}

void Supervisor::Spawn(Replica& r) {
  const ServiceSpec& s = plan_.services[r.service];
  r.pending_start = false;
  r.started_once = true;
  r.started = absl::Now();
  absl::StatusOr<Child> child =
      SpawnChild(ChildSpec{s.binary, r.argv, r.env, SIGKILL});
  if (!child.ok()) {
    Log(absl::StrCat(Name(r), ": ", child.status().message()));
    r.last_exit = "not started";
    r.ready_failed = true;
    OnUnexpectedExit(r, 127 << 8);
    return;
  }
  r.pid = child->pid;
  ++r.generation;
  r.log_ready = false;
  r.ready_deadline = r.started + s.ready_timeout;
  r.next_probe = r.started;
  r.kill_at = absl::InfiniteFuture();
  pump_->Add(child->output_fd, (static_cast<uint64_t>(r.slot) << 32) |
                                   (r.generation & 0xffffffffu));
  SetState(r, ProcessStatus::STARTING);
  Log(absl::StrCat(Name(r), ": started pid ", r.pid, ": ",
                   absl::StrJoin(r.argv, " ")));
}

void Supervisor::SendStop(Replica& r) {
  if (r.pid == 0) {
    SetState(r, ProcessStatus::STOPPED);
    return;
  }
  kill(-r.pid, SIGTERM);
  r.kill_at = absl::Now() + plan_.services[r.service].stop_grace;
  SetState(r, ProcessStatus::STOPPING);
  Log(absl::StrCat(Name(r), " (pid ", r.pid, "): SIGTERM"));
}

void Supervisor::SetState(Replica& r, State state) {
  r.state = state;
  if (state != ProcessStatus::RUNNING) r.draining = false;
  cv_.SignalAll();
}

bool Supervisor::DepsRunning(const ServiceSpec& s) const {
  for (const std::string& dep : s.depends_on) {
    for (const auto& r : replicas_) {
      if (plan_.services[r->service].name == dep &&
          r->state != ProcessStatus::RUNNING) {
        return false;
      }
    }
  }
  return true;
}

// --- rolling restarts, shutdown, endpoints --------------------------------

void Supervisor::BeginRollingStep() {
  rolling_current_ = rolling_queue_.front();
  rolling_queue_.pop_front();
  Replica& r = *replicas_[rolling_current_];
  if (r.state != ProcessStatus::RUNNING) {
    Log(absl::StrCat("rolling restart: skipping ", Name(r), " (",
                     ProcessStatus::State_Name(r.state), ")"));
    rolling_current_ = -1;
    return;
  }
  r.draining = true;
  rolling_phase_ = Rolling::kDraining;
  rolling_drain_until_ = absl::Now() + options_.drain_delay;
  Log(absl::StrCat("rolling restart: ", Name(r),
                   " leaves its endpoints list"));
}

void Supervisor::EndRollingStep(absl::string_view how) {
  Log(absl::StrCat("rolling restart: ", Name(*replicas_[rolling_current_]),
                   " ", how,
                   rolling_queue_.empty() ? "; rolling restart done" : ""));
  rolling_current_ = -1;
}

void Supervisor::AdvanceRolling() {
  if (shutting_down_) {
    rolling_queue_.clear();
    rolling_current_ = -1;
    return;
  }
  if (rolling_current_ < 0) {
    if (!rolling_queue_.empty()) BeginRollingStep();
    return;
  }
  Replica& r = *replicas_[rolling_current_];
  switch (rolling_phase_) {
    case Rolling::kDraining:
      if (r.state != ProcessStatus::RUNNING) {
        EndRollingStep(absl::StrCat("left RUNNING by itself (",
                                    ProcessStatus::State_Name(r.state), ")"));
      } else if (absl::Now() >= rolling_drain_until_) {
        r.restart_after_stop = true;
        SendStop(r);
        rolling_phase_ = Rolling::kStopping;
      }
      break;
    case Rolling::kStopping:
      if (r.state == ProcessStatus::STARTING) {
        rolling_phase_ = Rolling::kStarting;
      } else if (r.state != ProcessStatus::STOPPING) {
        EndRollingStep(absl::StrCat(
            "did not start again (", ProcessStatus::State_Name(r.state), ")"));
      }
      break;
    case Rolling::kStarting:
      if (r.state == ProcessStatus::RUNNING) {
        EndRollingStep("is back");
      } else if (r.state != ProcessStatus::STARTING) {
        EndRollingStep(absl::StrCat(
            "did not get ready (", ProcessStatus::State_Name(r.state), ")"));
      }
      break;
  }
}

void Supervisor::AdvanceShutdown() {
  if (!shutting_down_ || shutdown_done_) return;
  while (shutdown_service_ >= 0) {
    bool all_down = true;
    for (auto& r : replicas_) {
      if (r->service != shutdown_service_) continue;
      r->want_running = false;
      r->pending_start = false;
      if (r->pid == 0) {
        if (r->state != ProcessStatus::FATAL) {
          SetState(*r, ProcessStatus::STOPPED);
        }
      } else {
        all_down = false;
        if (r->state != ProcessStatus::STOPPING) SendStop(*r);
      }
    }
    if (!all_down) return;
    --shutdown_service_;
  }
  shutdown_done_ = true;
  cv_.SignalAll();
}

void Supervisor::WriteEndpoints() {
  if (plan_.etcd_mode()) return;
  for (size_t i = 0; i < plan_.services.size(); ++i) {
    std::vector<EndpointLine> lines;
    for (const auto& r : replicas_) {
      if (r->service == static_cast<int>(i) &&
          r->state == ProcessStatus::RUNNING && !r->draining) {
        lines.push_back({r->address, absl::StrCat(plan_.services[i].name, "/",
                                                  r->index)});
      }
    }
    const std::string& name = plan_.services[i].name;
    std::string text = FormatEndpoints(name, lines);
    if (text == written_[i]) continue;
    absl::Status st = WriteEndpointsFile(
        absl::StrCat(options_.state_dir, "/endpoints/", name), name, lines);
    if (!st.ok()) Log(st.message());
    written_[i] = std::move(text);
  }
}

void Supervisor::CheckStartup() {
  if (ready_ || !startup_error_.empty()) return;
  bool all_running = true;
  for (const auto& r : replicas_) {
    if (r->started_once && (r->state == ProcessStatus::FATAL ||
                            r->state == ProcessStatus::STOPPED)) {
      startup_error_ = absl::StrCat(
          Name(*r), " failed to start (", ProcessStatus::State_Name(r->state),
          ", last exit: ", r->last_exit, "; see ", options_.state_dir,
          "/logs/", plan_.services[r->service].name, ".", r->index, ".log)");
      cv_.SignalAll();
      return;
    }
    all_running = all_running && r->state == ProcessStatus::RUNNING;
  }
  if (all_running) {
    ready_ = true;
    cv_.SignalAll();
  }
}

// --- public intents --------------------------------------------------------

absl::Status Supervisor::WaitStartup(absl::Duration timeout) {
  MutexLock lock(&mu_);
  cv_.WaitUntil(&mu_, timeout, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return ready_ || !startup_error_.empty() || shutting_down_;
  });
  if (ready_) return absl::OkStatus();
  if (!startup_error_.empty()) {
    return absl::FailedPreconditionError(startup_error_);
  }
  if (shutting_down_) return absl::CancelledError("shutting down");
  return absl::DeadlineExceededError("not every replica is ready yet");
}

void Supervisor::RollingRestartAll() {
  MutexLock lock(&mu_);
  if (shutting_down_) return;
  if (rolling_current_ >= 0 || !rolling_queue_.empty()) {
    Log("SIGHUP during a rolling restart: coalesced into it");
    return;
  }
  for (size_t i = 0; i < replicas_.size(); ++i) rolling_queue_.push_back(i);
  Log(absl::StrCat("rolling restart of ", replicas_.size(), " replicas"));
  cv_.SignalAll();
}

void Supervisor::Shutdown() {
  MutexLock lock(&mu_);
  if (!shutting_down_) {
    shutting_down_ = true;
    shutdown_service_ = static_cast<int>(plan_.services.size()) - 1;
    Log("stopping every service, dependents first");
    cv_.SignalAll();
  }
  if (!thread_.joinable()) return;
  while (!shutdown_done_) cv_.Wait(&mu_);
}

absl::StatusOr<std::vector<int>> Supervisor::Select(
    const std::string& service, std::optional<uint32_t> replica) const {
  int s = plan_.Find(service);
  if (s < 0) {
    std::vector<std::string> names;
    for (const ServiceSpec& spec : plan_.services) names.push_back(spec.name);
    return absl::NotFoundError(absl::StrCat("no service \"", service,
                                            "\" (services: ",
                                            absl::StrJoin(names, ", "), ")"));
  }
  if (replica && *replica >= static_cast<uint32_t>(plan_.services[s].replicas)) {
    return absl::NotFoundError(absl::StrCat(
        "service \"", service, "\" has no replica ", *replica, " (replicas: 0..",
        plan_.services[s].replicas - 1, ")"));
  }
  std::vector<int> out;
  for (const auto& r : replicas_) {
    if (r->service == s && (!replica || r->index == static_cast<int>(*replica))) {
      out.push_back(r->slot);
    }
  }
  return out;
}

absl::Status Supervisor::Restart(const std::string& service,
                                 std::optional<uint32_t> replica) {
  absl::StatusOr<std::vector<int>> slots = Select(service, replica);
  if (!slots.ok()) return slots.status();
  MutexLock lock(&mu_);
  for (int slot : *slots) {
    if (slot != rolling_current_ &&
        std::find(rolling_queue_.begin(), rolling_queue_.end(), slot) ==
            rolling_queue_.end()) {
      rolling_queue_.push_back(slot);
    }
  }
  cv_.SignalAll();
  return absl::OkStatus();
}

absl::Status Supervisor::Stop(const std::string& service,
                              std::optional<uint32_t> replica) {
  absl::StatusOr<std::vector<int>> slots = Select(service, replica);
  if (!slots.ok()) return slots.status();
  MutexLock lock(&mu_);
  for (int slot : *slots) {
    replicas_[slot]->want_running = false;
    replicas_[slot]->pending_start = false;
  }
  cv_.SignalAll();
  return absl::OkStatus();
}

absl::Status Supervisor::StartReplicas(const std::string& service,
                                       std::optional<uint32_t> replica) {
  absl::StatusOr<std::vector<int>> slots = Select(service, replica);
  if (!slots.ok()) return slots.status();
  MutexLock lock(&mu_);
  for (int slot : *slots) {
    Replica& r = *replicas_[slot];
    r.want_running = true;
    if (r.state == ProcessStatus::STOPPED || r.state == ProcessStatus::FATAL) {
      r.pending_start = true;
      r.backoff.Reset();
    } else if (r.state == ProcessStatus::BACKOFF) {
      r.next_start = absl::Now();
    }
  }
  cv_.SignalAll();
  return absl::OkStatus();
}

StatusResponse Supervisor::Status() const {
  StatusResponse out;
  MutexLock lock(&mu_);
  for (size_t i = 0; i < plan_.services.size(); ++i) {
    ServiceStatus* s = out.add_services();
    s->set_name(plan_.services[i].name);
    s->set_target(TargetOf(plan_.services[i].name));
    s->set_replicas(plan_.services[i].replicas);
  }
  for (const auto& r : replicas_) {
    ProcessStatus* p = out.add_processes();
    p->set_service(plan_.services[r->service].name);
    p->set_replica(r->index);
    p->set_pid(r->pid);
    p->set_state(r->state);
    p->set_restarts(r->restarts);
    p->set_address(r->address);
    p->set_last_exit(r->last_exit);
    p->set_started_unix_ms(UnixMillis(r->started));
    if (r->state == ProcessStatus::RUNNING) {
      ServiceStatus* s = out.mutable_services(r->service);
      s->set_ready(s->ready() + 1);
    }
  }
  return out;
}

std::string Supervisor::TargetOf(absl::string_view service) const {
  if (plan_.etcd_mode()) return RegistryTarget(plan_, service);
  return absl::StrCat("file://", options_.state_dir, "/endpoints/", service);
}

// --- output ---------------------------------------------------------------

void Supervisor::OnLine(uint64_t key, absl::string_view line) {
  const size_t slot = key >> 32;
  const uint64_t generation = key & 0xffffffffu;
  const Replica& r = *replicas_[slot];  // Only its const fields below.
  const ServiceSpec& s = plan_.services[r.service];
  if (options_.echo_output) {
    std::string out = absl::StrCat(s.name, "/", r.index, " | ", line, "\n");
    (void)!write(STDOUT_FILENO, out.data(), out.size());
  }
  logs_[slot]->Append(line);
  if (s.log_line.empty() || !absl::StrContains(line, s.log_line)) return;
  MutexLock lock(&mu_);
  Replica& mutable_r = *replicas_[slot];
  if ((mutable_r.generation & 0xffffffffu) == generation) {
    mutable_r.log_ready = true;
    cv_.SignalAll();
  }
}

void Supervisor::Log(absl::string_view message) const {
  std::string out = absl::StrCat("bevrpc-launch: ", message, "\n");
  (void)!write(STDERR_FILENO, out.data(), out.size());
}

std::string Supervisor::Name(const Replica& r) const {
  return absl::StrCat(plan_.services[r.service].name, "/", r.index);
}

}  // namespace bevrpc::launch
