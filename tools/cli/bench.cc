#include "tools/cli/bench.h"

#include <algorithm>
#include <map>
#include <atomic>
#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "rpc/channel.h"
#include "transport/loop_pool.h"
#include "transport/sync.h"

namespace bevrpc::cli {
namespace {

// A closed-loop call that failed with UNAVAILABLE (connection refused or
// lost) waits this long before it is reissued, so that a dead server costs
// a few reconnects per slot per second rather than a spinning loop.
constexpr int64_t kUnavailableRetryNs = 10'000'000;
// Open loop: the fastest schedule accepted.
constexpr double kMaxRps = 1e7;
// The driver checks the drain at least this often.
constexpr absl::Duration kDrainPoll = absl::Milliseconds(10);

int64_t MonoNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Outstanding calls of connection `i` when `total` are spread over `conns`.
int ShareOf(int total, int conns, int i) {
  return total / conns + (i < total % conns ? 1 : 0);
}

struct Connection;

// The preallocated state of one outstanding call, reused call after call.
// Touched by one thread at a time: whoever issues the call, then the
// completion callback (CallAsync's Post orders the two).
struct CallSlot {
  std::unique_ptr<google::protobuf::Message> request;
  std::unique_ptr<google::protobuf::Message> response;
  Connection* conn = nullptr;  // Carries the current call.
  int64_t start_ns = 0;        // Issue time (closed) or schedule (open).
  int64_t retry_at_ns = 0;     // While parked after UNAVAILABLE.
};

// One Channel with one TCP connection, and the statistics of the calls it
// carried. Completion callbacks, which all run on the connection's single
// I/O thread, are the only writers; the driver reads the atomics during the
// run and everything else once the I/O threads are joined.
struct alignas(64) Connection {
  std::unique_ptr<Channel> channel;
  std::vector<std::unique_ptr<CallSlot>> slots;  // Closed loop: its share.
  Histogram latency;
  std::map<absl::StatusCode, int64_t> errors_by_code;
  int64_t bad_responses = 0;
  std::atomic<int64_t> completed{0};  // Every completion, for progress.
  std::atomic<int64_t> measured_calls{0};
  std::atomic<int64_t> errors{0};
};

absl::Status Validate(const BenchOptions& o) {
  auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (o.address.empty()) return bad("address is empty");
  if (o.method.empty()) return bad("method is empty");
  if (o.request == nullptr) return bad("request is null");
  if (o.response_prototype == nullptr) return bad("response_prototype is null");
  if (o.connections < 1) return bad("connections must be >= 1, got ", o.connections);
  if (o.rps == 0 && o.concurrency < 1) {
    return bad("concurrency must be >= 1, got ", o.concurrency);
  }
  // The schedule must stay a finite loop per driver wake-up.
  if (!(o.rps >= 0 && o.rps <= kMaxRps)) {
    return bad("rps must be in [0, ", kMaxRps, "], got ", o.rps);
  }
  if (o.rps > 0 && o.max_outstanding < 1) {
    return bad("max_outstanding must be >= 1, got ", o.max_outstanding);
  }
  if (o.total_calls < 0) return bad("total_calls must be >= 0, got ", o.total_calls);
  if (o.duration <= absl::ZeroDuration() || o.duration == absl::InfiniteDuration()) {
    return bad("duration must be positive and finite, got ",
               absl::FormatDuration(o.duration));
  }
  if (o.warmup < absl::ZeroDuration() || o.warmup == absl::InfiniteDuration()) {
    return bad("warmup must be >= 0 and finite, got ",
               absl::FormatDuration(o.warmup));
  }
  if (o.drain_timeout < absl::ZeroDuration() ||
      o.drain_timeout == absl::InfiniteDuration()) {
    return bad("drain_timeout must be >= 0 and finite, got ",
               absl::FormatDuration(o.drain_timeout));
  }
  if (o.threads < 1) return bad("threads must be >= 1, got ", o.threads);
  if (o.timeout <= absl::ZeroDuration()) {
    return bad("timeout must be positive, got ", absl::FormatDuration(o.timeout));
  }
  if (o.progress_interval <= absl::ZeroDuration()) {
    return bad("progress_interval must be positive, got ",
               absl::FormatDuration(o.progress_interval));
  }
  return absl::OkStatus();
}

// One run. The calling thread is the driver: Start(), Drive(), Finish(),
// Collect(), in that order. Completion callbacks run on the I/O threads.
class BenchRun {
 public:
  explicit BenchRun(const BenchOptions& options)
      : options_(options), open_loop_(options.rps > 0) {}

  absl::Status Start();
  void Drive();
  void Finish();
  BenchResult Collect() const;

 private:
  std::unique_ptr<CallSlot> NewSlot() const;
  void Issue(CallSlot* slot, Connection* conn, int64_t start_ns);
  void OnDone(CallSlot* slot, const absl::Status& status);
  void Account(const CallSlot& slot, const absl::Status& status, int64_t now);
  void CloseWindow(int64_t now);
  // Driver helpers; each returns when it next wants to run.
  int64_t IssueScheduled(int64_t now);
  int64_t RetryParked(int64_t now);
  void Report(int64_t now);
  void Stop();
  void WaitForLoops();

  const BenchOptions& options_;
  const bool open_loop_;
  CallOptions call_options_;
  // Declared before conns_ so that channels go first on every exit path.
  std::unique_ptr<transport::LoopPool> loops_;
  std::vector<std::unique_ptr<Connection>> conns_;

  int64_t start_ns_ = 0;
  int64_t measure_start_ns_ = 0;
  // Calls started per endpoint (over all channels): when the window
  // opened, and in the window (set by Finish()).
  bool window_opened_ = false;
  std::map<std::string, int64_t> endpoint_base_;
  std::map<std::string, int64_t> endpoint_calls_;
  std::map<std::string, int64_t> EndpointCalls() const;
  std::atomic<int64_t> measure_end_ns_{0};  // Earlier if total_calls hit.
  std::atomic<bool> stopping_{false};       // No new calls.
  std::atomic<bool> closed_{false};         // Completions are ignored.
  // Calls started and not yet accounted; after Finish(), the unanswered.
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> measured_{0};  // Window completions, for total_calls.

  Mutex mu_;
  CondVar cv_;  // stopping_ set, or in_flight_ reached 0 while stopping.
  std::vector<CallSlot*> parked_ ABSL_GUARDED_BY(mu_);
  std::vector<CallSlot*> free_ ABSL_GUARDED_BY(mu_);  // Open loop.

  // Driver-only.
  std::vector<std::unique_ptr<CallSlot>> open_slots_;
  int64_t next_schedule_ = 0;
  size_t next_conn_ = 0;
  int64_t dropped_ = 0;
  int64_t last_report_ns_ = 0;
  int64_t last_completed_ = 0;
};

std::unique_ptr<CallSlot> BenchRun::NewSlot() const {
  auto slot = std::make_unique<CallSlot>();
  slot->request.reset(options_.request->New());
  slot->request->CopyFrom(*options_.request);
  slot->response.reset(options_.response_prototype->New());
  return slot;
}

absl::Status BenchRun::Start() {
  call_options_.timeout = options_.timeout;
  call_options_.metadata = options_.metadata;
  int threads = std::min(options_.threads, options_.connections);
  absl::StatusOr<std::unique_ptr<transport::LoopPool>> loops =
      transport::LoopPool::Start(threads, "bench-io");
  if (!loops.ok()) return loops.status();
  loops_ = *std::move(loops);
  for (int i = 0; i < options_.connections; ++i) {
    ChannelOptions channel_options;
    channel_options.enable_metrics = options_.enable_metrics;
    channel_options.num_connections = 1;
    channel_options.loops = loops_.get();
    channel_options.load_balancer = options_.load_balancer;
    channel_options.service_config = options_.service_config;
    channel_options.tls = options_.tls;
    absl::StatusOr<std::unique_ptr<Channel>> channel =
        Channel::Create(options_.address, channel_options);
    if (!channel.ok()) return channel.status();
    auto conn = std::make_unique<Connection>();
    conn->channel = *std::move(channel);
    if (!open_loop_) {
      int share = ShareOf(options_.concurrency, options_.connections, i);
      for (int s = 0; s < share; ++s) conn->slots.push_back(NewSlot());
    }
    conns_.push_back(std::move(conn));
  }
  return absl::OkStatus();
}

void BenchRun::Issue(CallSlot* slot, Connection* conn, int64_t start_ns) {
  slot->conn = conn;
  slot->start_ns = start_ns;
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  conn->channel->CallAsync(
      options_.method, *slot->request, slot->response.get(), call_options_,
      [this, slot](absl::Status status) { OnDone(slot, status); });
}

// On the I/O thread of slot->conn.
void BenchRun::OnDone(CallSlot* slot, const absl::Status& status) {
  const int64_t now = MonoNanos();
  Connection* conn = slot->conn;
  conn->completed.fetch_add(1, std::memory_order_relaxed);
  // After the drain, channels are being destroyed: their CANCELLED calls
  // are already counted as unanswered.
  if (closed_.load(std::memory_order_acquire)) return;
  Account(*slot, status, now);
  if (open_loop_) {
    MutexLock lock(&mu_);
    free_.push_back(slot);
  } else if (!stopping_.load(std::memory_order_acquire) &&
             now < measure_end_ns_.load(std::memory_order_acquire)) {
    if (status.code() == absl::StatusCode::kUnavailable) {
      MutexLock lock(&mu_);
      slot->retry_at_ns = now + kUnavailableRetryNs;
      parked_.push_back(slot);
    } else {
      Issue(slot, conn, now);  // Counted in flight before this one leaves.
    }
  }
  if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      stopping_.load(std::memory_order_acquire)) {
    MutexLock lock(&mu_);
    cv_.SignalAll();
  }
}

void BenchRun::Account(const CallSlot& slot, const absl::Status& status,
                       int64_t now) {
  if (now < measure_start_ns_) return;  // Warm-up.
  bool in_window = now < measure_end_ns_.load(std::memory_order_acquire);
  if (in_window && options_.total_calls > 0) {
    int64_t index = measured_.fetch_add(1, std::memory_order_relaxed);
    if (index >= options_.total_calls) {
      in_window = false;
    } else if (index == options_.total_calls - 1) {
      CloseWindow(now);
    }
  }
  if (status.ok() && !in_window) return;  // After the window: not counted.
  Connection* conn = slot.conn;
  if (status.ok()) {
    if (!options_.check_response || options_.check_response(*slot.response)) {
      conn->latency.Record(now - slot.start_ns);
      conn->measured_calls.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    ++conn->bad_responses;
  } else {
    ++conn->errors_by_code[status.code()];
  }
  conn->errors.fetch_add(1, std::memory_order_relaxed);
}

void BenchRun::CloseWindow(int64_t now) {
  MutexLock lock(&mu_);
  if (now < measure_end_ns_.load(std::memory_order_acquire)) {
    measure_end_ns_.store(now, std::memory_order_release);
  }
  stopping_.store(true, std::memory_order_release);
  cv_.SignalAll();
}

void BenchRun::Drive() {
  start_ns_ = MonoNanos();
  measure_start_ns_ = start_ns_ + absl::ToInt64Nanoseconds(options_.warmup);
  measure_end_ns_.store(
      measure_start_ns_ + absl::ToInt64Nanoseconds(options_.duration),
      std::memory_order_release);
  last_report_ns_ = start_ns_;
  const int64_t interval = absl::ToInt64Nanoseconds(options_.progress_interval);
  int64_t next_report = start_ns_ + interval;
  if (options_.warmup <= absl::ZeroDuration()) {  // The window is open now.
    window_opened_ = true;
    endpoint_base_ = EndpointCalls();
  }
  if (!open_loop_) {
    for (auto& conn : conns_) {
      for (auto& slot : conn->slots) Issue(slot.get(), conn.get(), MonoNanos());
    }
  }
  for (;;) {
    int64_t now = MonoNanos();
    const int64_t end = measure_end_ns_.load(std::memory_order_acquire);
    if (!window_opened_ && now >= measure_start_ns_) {
      window_opened_ = true;
      endpoint_base_ = EndpointCalls();
    }
    if (now >= end || stopping_.load(std::memory_order_acquire)) break;
    int64_t wake = end;
    if (!window_opened_) wake = std::min(wake, measure_start_ns_);
    if (open_loop_) wake = std::min(wake, IssueScheduled(now));
    wake = std::min(wake, RetryParked(now));
    if (options_.on_progress) {
      if (now >= next_report) {
        Report(now);
        next_report = std::max(next_report + interval, now + interval / 2);
      }
      wake = std::min(wake, next_report);
    }
    MutexLock lock(&mu_);
    int64_t wait = wake - MonoNanos();
    if (wait > 0 && !stopping_.load(std::memory_order_acquire)) {
      cv_.WaitWithTimeout(&mu_, absl::Nanoseconds(wait));
    }
  }
  Stop();
}

// Issues every call scheduled up to `now`; returns the next schedule.
int64_t BenchRun::IssueScheduled(int64_t now) {
  const double interval_ns = 1e9 / options_.rps;
  const int64_t end = measure_end_ns_.load(std::memory_order_acquire);
  for (;;) {
    int64_t when = start_ns_ + static_cast<int64_t>(
                                   static_cast<double>(next_schedule_) *
                                   interval_ns);
    if (when > now || when >= end) return when;
    ++next_schedule_;
    CallSlot* slot = nullptr;
    {
      MutexLock lock(&mu_);
      if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
      }
    }
    if (slot == nullptr &&
        open_slots_.size() < static_cast<size_t>(options_.max_outstanding)) {
      open_slots_.push_back(NewSlot());
      slot = open_slots_.back().get();
    }
    if (slot == nullptr) {
      if (when >= measure_start_ns_) ++dropped_;
      continue;
    }
    Issue(slot, conns_[next_conn_++ % conns_.size()].get(), when);
  }
}

// Reissues the parked calls that are due; returns the next due time.
int64_t BenchRun::RetryParked(int64_t now) {
  std::vector<CallSlot*> due;
  int64_t next = measure_end_ns_.load(std::memory_order_acquire);
  {
    MutexLock lock(&mu_);
    auto waiting = std::partition(
        parked_.begin(), parked_.end(),
        [now](CallSlot* slot) { return slot->retry_at_ns > now; });
    due.assign(waiting, parked_.end());
    parked_.erase(waiting, parked_.end());
    for (CallSlot* slot : parked_) next = std::min(next, slot->retry_at_ns);
  }
  for (CallSlot* slot : due) Issue(slot, slot->conn, now);
  return next;
}

void BenchRun::Report(int64_t now) {
  BenchProgress progress;
  progress.elapsed = absl::Nanoseconds(now - start_ns_);
  progress.warming_up = now < measure_start_ns_;
  int64_t completed = 0;
  for (const auto& conn : conns_) {
    completed += conn->completed.load(std::memory_order_relaxed);
    progress.calls += conn->measured_calls.load(std::memory_order_relaxed);
    progress.errors += conn->errors.load(std::memory_order_relaxed);
  }
  double seconds = static_cast<double>(now - last_report_ns_) / 1e9;
  if (seconds > 0) {
    progress.current_qps =
        static_cast<double>(completed - last_completed_) / seconds;
  }
  progress.in_flight = in_flight_.load(std::memory_order_relaxed);
  last_report_ns_ = now;
  last_completed_ = completed;
  options_.on_progress(progress);
}

// Ends issuing. Afterwards no callback starts a call: a callback that read
// stopping_ as false before the store has returned (and its CallAsync has
// handed the call to the channel) once every loop ran a later task.
void BenchRun::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_.store(true, std::memory_order_release);
    parked_.clear();  // Not in flight; just not reissued.
  }
  WaitForLoops();
}

void BenchRun::WaitForLoops() {
  for (int i = 0; i < loops_->size(); ++i) {
    Notification ran;
    loops_->loop(i)->Post([&ran] { ran.Notify(); });
    ran.WaitForNotification();
  }
}

std::map<std::string, int64_t> BenchRun::EndpointCalls() const {
  std::map<std::string, int64_t> calls;
  for (const auto& conn : conns_) {
    for (const ChannelEndpoint& e : conn->channel->endpoints()) {
      calls[e.address] += static_cast<int64_t>(e.calls_started);
    }
  }
  return calls;
}

void BenchRun::Finish() {
  const int64_t deadline =
      MonoNanos() + absl::ToInt64Nanoseconds(options_.drain_timeout);
  {
    MutexLock lock(&mu_);
    while (in_flight_.load(std::memory_order_acquire) > 0) {
      int64_t left = deadline - MonoNanos();
      if (left <= 0) break;
      cv_.WaitWithTimeout(&mu_, std::min(absl::Nanoseconds(left), kDrainPoll));
    }
  }
  closed_.store(true, std::memory_order_release);
  endpoint_calls_ = EndpointCalls();
  for (const auto& [address, base] : endpoint_base_) {
    endpoint_calls_[address] -= base;
  }
  // Fails what is still open with CANCELLED; the callbacks ignore it.
  for (auto& conn : conns_) conn->channel.reset();
  loops_->Stop();  // Joins the I/O threads: their writes are visible now.
}

BenchResult BenchRun::Collect() const {
  BenchResult result;
  for (const auto& conn : conns_) {
    result.latency.Merge(conn->latency);
    for (const auto& [code, count] : conn->errors_by_code) {
      result.errors_by_code[code] += count;
      result.errors += count;
    }
    result.bad_responses += conn->bad_responses;
  }
  result.calls = result.latency.Count();
  result.seconds = static_cast<double>(
                       measure_end_ns_.load(std::memory_order_acquire) -
                       measure_start_ns_) /
                   1e9;
  result.qps = result.seconds > 0
                   ? static_cast<double>(result.calls) / result.seconds
                   : 0;
  result.unanswered = in_flight_.load(std::memory_order_acquire);
  result.errors += result.bad_responses + result.unanswered;
  result.dropped = dropped_;
  result.endpoint_calls = endpoint_calls_;
  result.target_rps = options_.rps;
  result.connections = options_.connections;
  result.concurrency = open_loop_ ? 0 : options_.concurrency;
  result.threads = std::min(options_.threads, options_.connections);
  return result;
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<BenchResult> RunBench(const BenchOptions& options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  BenchRun run(options);
  if (absl::Status s = run.Start(); !s.ok()) return s;
  run.Drive();
  run.Finish();
  return run.Collect();
}

std::string FormatSummary(const BenchResult& r, int histogram_width) {
  auto ns = [](double v) { return Histogram::FormatNanos(v); };
  std::string out;
  if (r.target_rps > 0) {
    absl::StrAppendFormat(&out,
                          "load        open loop at %.1f calls/s over %d "
                          "connection(s), %d I/O thread(s)\n",
                          r.target_rps, r.connections, r.threads);
  } else {
    absl::StrAppendFormat(&out,
                          "load        closed loop, %d outstanding over %d "
                          "connection(s), %d I/O thread(s)\n",
                          r.concurrency, r.connections, r.threads);
  }
  absl::StrAppendFormat(&out, "calls       %d OK in %.2f s\n", r.calls,
                        r.seconds);
  absl::StrAppendFormat(&out, "qps         %.1f\n", r.qps);
  const Histogram& h = r.latency;
  absl::StrAppendFormat(
      &out, "latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s\n",
      ns(h.Percentile(50)), ns(h.Percentile(90)), ns(h.Percentile(99)),
      ns(h.Percentile(99.9)), ns(static_cast<double>(h.Max())),
      ns(h.Mean()));
  absl::StrAppendFormat(&out, "errors      %d", r.errors);
  std::vector<std::string> parts;
  for (const auto& [code, count] : r.errors_by_code) {
    parts.push_back(absl::StrCat(absl::StatusCodeToString(code), " ", count));
  }
  if (r.bad_responses > 0) {
    parts.push_back(absl::StrCat("bad response ", r.bad_responses));
  }
  if (r.unanswered > 0) {
    parts.push_back(absl::StrCat("unanswered ", r.unanswered));
  }
  if (!parts.empty()) absl::StrAppend(&out, " (", absl::StrJoin(parts, ", "), ")");
  absl::StrAppend(&out, "\n");
  if (r.target_rps > 0) {
    absl::StrAppendFormat(&out, "dropped     %d (max_outstanding reached)\n",
                          r.dropped);
  }
  if (!r.endpoint_calls.empty()) {
    int64_t total = 0;
    for (const auto& [address, n] : r.endpoint_calls) total += n;
    std::vector<std::string> eps;
    for (const auto& [address, n] : r.endpoint_calls) {
      eps.push_back(absl::StrFormat(
          "%s %d (%.1f%%)", address, n,
          total > 0 ? 100.0 * static_cast<double>(n) / static_cast<double>(total)
                    : 0.0));
    }
    absl::StrAppend(&out, "endpoints   ", absl::StrJoin(eps, ", "), "\n");
  }
  absl::StrAppend(&out, "histogram\n", h.RenderAscii(histogram_width));
  return out;
}

std::string FormatJsonLine(const BenchResult& r, absl::string_view system,
                           int connections, int concurrency, int payload,
                           int threads, bool with_endpoints) {
  const Histogram& h = r.latency;
  return absl::StrFormat(
      "{\"system\":\"%s\",\"connections\":%d,\"concurrency\":%d,"
      "\"payload\":%d,\"qps\":%.1f,\"p50_us\":%.2f,\"p90_us\":%.2f,"
      "\"p99_us\":%.2f,\"p999_us\":%.2f,\"errors\":%d,\"calls\":%d,"
      "\"threads\":%d,\"duration_s\":%.3f%s}\n",
      JsonEscape(system), connections, concurrency, payload, r.qps,
      h.Percentile(50) / 1e3, h.Percentile(90) / 1e3, h.Percentile(99) / 1e3,
      h.Percentile(99.9) / 1e3, r.errors, r.calls, threads, r.seconds,
      with_endpoints
          ? absl::StrCat(",\"endpoints\":{",
                         absl::StrJoin(r.endpoint_calls, ",",
                                       [](std::string* out, const auto& e) {
                                         absl::StrAppend(out, "\"",
                                                         JsonEscape(e.first),
                                                         "\":", e.second);
                                       }),
                         "}")
          : std::string());
}

}  // namespace bevrpc::cli
