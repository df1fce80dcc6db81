// RunBench: a load generator for one unary bevrpc method, closed or open
// loop, with a latency histogram, errors by status code and two reports:
// a human summary and the one-line JSON of the peer-comparison contract
// (/work/shared/bench/peers/README.md).
//
//   EchoRequest request;  request.set_message(std::string(64, 'x'));
//   EchoResponse response;
//   BenchOptions options;
//   options.address = "127.0.0.1:8080";
//   options.method = "bevrpc.echo.Echo/Echo";
//   options.request = &request;
//   options.response_prototype = &response;
//   options.connections = 2;
//   options.concurrency = 64;
//   absl::StatusOr<BenchResult> result = RunBench(options);
//   if (result.ok()) std::cout << FormatSummary(*result);
//
// Closed loop (rps == 0): `concurrency` calls are outstanding in total;
// each completed call is replaced at once from its completion callback.
// Open loop (rps > 0): calls start on a fixed schedule whatever the
// replies do, latency runs from the scheduled time (so a slow server cannot
// hide its queueing: no coordinated omission), and a schedule slot that
// finds max_outstanding calls already open is dropped and counted.
//
// Timeline: warm-up, then the measured window, then a bounded drain. Only
// calls that complete inside the window count in `calls` and the histogram.
// Failed calls (and replies check_response rejects) count as errors from the
// start of the window to the end of the drain; calls still unanswered when
// the drain ends count as errors too (`unanswered`).
//
// Threading: RunBench() blocks the calling thread, which drives the run
// (schedule, progress); it may be called from any thread that is not a
// bevrpc I/O thread, and several runs may proceed at once.
#ifndef BEVRPC_TOOLS_CLI_BENCH_H_
#define BEVRPC_TOOLS_CLI_BENCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/service_config.h"
#include "transport/tls.h"
#include "rpc/call_options.h"
#include "tools/cli/histogram.h"

namespace bevrpc::cli {

// A snapshot passed to BenchOptions::on_progress.
struct BenchProgress {
  // Since the run started, warm-up included.
  absl::Duration elapsed;
  // True until the measured window opens.
  bool warming_up = true;
  // Calls completed OK inside the measured window so far.
  int64_t calls = 0;
  // Errors counted so far (see the header comment).
  int64_t errors = 0;
  // Completions (OK or not, warm-up included) per second since the previous
  // report.
  double current_qps = 0;
  // Calls started and not yet completed.
  int64_t in_flight = 0;
};

struct BenchOptions {
  // Any target: "host:port", "list:///a,b", "etcd://h:p/prefix", ...
  // (rpc/naming/target.h). Required.
  std::string address;
  // The channels' load balancer (ChannelOptions::load_balancer).
  // Default: "round_robin".
  std::string load_balancer = "round_robin";
  // Timeouts, retries, hedging (ChannelOptions::service_config). Default:
  // none (idempotent methods are still retried on UNAVAILABLE).
  ::bevrpc::ServiceConfig service_config;
  // TLS of the channels (ChannelOptions::tls). Default: plaintext.
  ::bevrpc::transport::TlsClientOptions tls;
  // Client metrics of the channels (ChannelOptions::enable_metrics).
  // Default: true.
  bool enable_metrics = true;
  // "package.Service/Method". Required.
  std::string method;
  // Sent by every call; borrowed, must outlive RunBench(). Each outstanding
  // call slot holds its own copy, made once. Required.
  const google::protobuf::Message* request = nullptr;
  // The reply type; borrowed, must outlive RunBench(). Required.
  const google::protobuf::Message* response_prototype = nullptr;
  // Channels, each with one connection to every endpoint of the target.
  // Default: 1.
  int connections = 1;
  // Closed loop: calls outstanding in total, spread over the connections
  // (connection i carries concurrency/connections, +1 if
  // i < concurrency%connections). Ignored in open loop. Default: 1.
  int concurrency = 1;
  // > 0: open loop at this many calls per second, spread round-robin over
  // the connections. Default: 0 (closed loop).
  double rps = 0;
  // Open loop: calls open at once beyond which scheduled calls are dropped.
  // Default: 1000.
  int max_outstanding = 1000;
  // > 0: the window closes after this many measured completions (OK or
  // failed), or after `duration`, whichever comes first. Default: 0 (use
  // `duration` alone).
  int64_t total_calls = 0;
  // The measured window. Default: 5 s.
  absl::Duration duration = absl::Seconds(5);
  // Calls run before the window opens, not counted. Default: 1 s.
  absl::Duration warmup = absl::Seconds(1);
  // How long to wait after the window for calls still in flight. Default:
  // 5 s.
  absl::Duration drain_timeout = absl::Seconds(5);
  // Client I/O threads (event loops), shared by the connections; capped at
  // `connections`. Default: 1.
  int threads = 1;
  // Per-call deadline. Default: none.
  absl::Duration timeout = absl::InfiniteDuration();
  // Request headers sent with every call. Default: none.
  Metadata metadata;
  // Optional: false marks an OK reply as wrong (an error). Called on an I/O
  // thread, concurrently for different connections; must be thread-safe and
  // must not block. Default: none (every OK reply is right).
  std::function<bool(const google::protobuf::Message&)> check_response;
  // Optional: called about every `progress_interval` until the window
  // closes, on the thread that called RunBench() (never an I/O thread).
  // Default: none.
  std::function<void(const BenchProgress&)> on_progress;
  // Default: 200 ms.
  absl::Duration progress_interval = absl::Milliseconds(200);
};

struct BenchResult {
  // Calls completed OK inside the measured window.
  int64_t calls = 0;
  // Length of the measured window: `duration`, or less when total_calls
  // closed it early.
  double seconds = 0;
  // calls / seconds.
  double qps = 0;
  // Latency of the counted calls, in nanoseconds.
  Histogram latency;
  // Failed calls by status code.
  std::map<absl::StatusCode, int64_t> errors_by_code;
  // OK replies that check_response rejected.
  int64_t bad_responses = 0;
  // Calls still open when the drain ended.
  int64_t unanswered = 0;
  // Total: errors_by_code + bad_responses + unanswered.
  int64_t errors = 0;
  // Open loop: scheduled calls (inside the window) not started because
  // max_outstanding calls were open.
  int64_t dropped = 0;
  // Open loop: the requested rate; 0 for a closed loop.
  double target_rps = 0;
  // Calls started on each endpoint ("IP:PORT") while the window was open,
  // over all channels.
  std::map<std::string, int64_t> endpoint_calls;
  // The parameters actually used (threads after the cap).
  int connections = 0;
  int concurrency = 0;
  int threads = 0;
};

// Runs one benchmark. Fails with INVALID_ARGUMENT on bad options or address,
// or with the error of starting the I/O threads. Unreachable servers and
// failed calls are not failures of RunBench(): they are counted in the
// result's errors. Blocks for about warmup + duration (+ up to
// drain_timeout).
absl::StatusOr<BenchResult> RunBench(const BenchOptions& options);

// A human summary: calls, QPS, p50/p90/p99/p99.9/max, errors by code name,
// calls per endpoint, and the latency histogram drawn `histogram_width`
// characters wide.
std::string FormatSummary(const BenchResult& result,
                          int histogram_width = 72);

// One JSON line (with '\n') with the peer-comparison contract's keys, in
// this order: system, connections, concurrency, payload, qps, p50_us,
// p90_us, p99_us, p999_us, errors, calls, threads, duration_s; then, with
// `with_endpoints` (the CLI's line; the peer contract has no such key),
// endpoints ({"IP:PORT": calls started in the window, ...}).
std::string FormatJsonLine(const BenchResult& result, absl::string_view system,
                           int connections, int concurrency, int payload,
                           int threads, bool with_endpoints = false);

}  // namespace bevrpc::cli

#endif  // BEVRPC_TOOLS_CLI_BENCH_H_
