// Microbenchmarks of the whole dispatch path in one process: a Channel calls
// the echo service of a Server over loopback TCP (127.0.0.1:0). A call is
// serialized and framed by the channel, decoded, dispatched and answered on
// the server's I/O loop (echo is callback-flavoured, so the worker pool stays
// idle), and the response is decoded and completed on the channel's loop.
//
//   bazel build -c opt //rpc:dispatch_benchmark
//   bazel-bin/rpc/dispatch_benchmark                     # everything, ~5 s
//   bazel-bin/rpc/dispatch_benchmark --benchmark_filter=Pipelined
//
// BM_BlockingCall: Channel::Call() round trips, one call in flight.
// BM_PipelinedCalls: 64 CallAsync() calls issued at once, then waited for.
// Items are calls; bytes_per_second counts request plus response message
// bytes. Three threads are busy (this one, the channel's and the server's
// I/O loops), so times are wall clock (UseRealTime); the CPU column is this
// thread's alone. `metrics` turns call metrics on (1, the default) or off
// (0) on both sides. Calls have no deadline, like `bevrpc bench`. Each run
// starts its own server and channel outside the timed loop. Google
// Benchmark's default --benchmark_min_time (0.5 s) keeps the whole run to a
// few seconds. This machine is noisy: compare figures from one run only.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "rpc/metrics/metrics.h"
#include "rpc/server_options.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

constexpr int kPipelineDepth = 64;

// A server with the echo service and a channel connected to it.
class EchoLoopback {
 public:
  // `metrics`: ServerOptions / ChannelOptions::enable_metrics (each into a
  // registry of this loopback's own).
  explicit EchoLoopback(bool metrics = true) : server_(Options(metrics, &registry_)) {
    channel_options_.enable_metrics = metrics;
    channel_options_.metrics_registry = &registry_;
  }
  ~EchoLoopback() {
    channel_.reset();  // First, so no call is open when the server stops.
    server_.Shutdown(absl::Seconds(1));
  }
  EchoLoopback(const EchoLoopback&) = delete;
  EchoLoopback& operator=(const EchoLoopback&) = delete;

  // Starts the server and connects the channel with one call, so that the
  // timed loop does not pay for the connect.
  absl::Status Start() {
    absl::Status s = echo::RegisterEchoService(server_);
    if (!s.ok()) return s;
    s = server_.Start();
    if (!s.ok()) return s;
    absl::StatusOr<std::unique_ptr<Channel>> channel =
        Channel::Create(absl::StrCat("127.0.0.1:", server_.port()),
                        channel_options_);
    if (!channel.ok()) return channel.status();
    channel_ = *std::move(channel);
    echo::EchoRequest request;
    request.set_message("warm-up");
    echo::EchoResponse response;
    return channel_->Call(echo::kEchoMethod, request, &response);
  }

  Channel& channel() { return *channel_; }

 private:
  static ServerOptions Options(bool metrics,
                               metrics::MetricsRegistry* registry) {
    ServerOptions options;
    options.enable_metrics = metrics;
    options.metrics_registry = registry;
    return options;
  }

  metrics::MetricsRegistry registry_;  // Outlives the server and channel.
  Server server_;
  ChannelOptions channel_options_;
  std::unique_ptr<Channel> channel_;
};

echo::EchoRequest MakeRequest(int64_t message_bytes) {
  echo::EchoRequest request;
  request.set_message(std::string(message_bytes, 'x'));
  return request;
}

void SetCallCounters(benchmark::State& state, int64_t calls,
                     int64_t message_bytes) {
  state.SetItemsProcessed(calls);
  state.SetBytesProcessed(calls * 2 * message_bytes);
}

void BM_BlockingCall(benchmark::State& state) {
  EchoLoopback loopback(state.range(1) != 0);
  if (absl::Status s = loopback.Start(); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  const echo::EchoRequest request = MakeRequest(state.range(0));
  echo::EchoResponse response;
  for (auto _ : state) {
    absl::Status s =
        loopback.channel().Call(echo::kEchoMethod, request, &response);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  if (response.message().size() != request.message().size()) {
    state.SkipWithError("the echoed message has the wrong size");
  }
  SetCallCounters(state, state.iterations(), state.range(0));
}
BENCHMARK(BM_BlockingCall)
    ->ArgNames({"message_bytes", "metrics"})
    ->Args({64, 1})
    ->Args({64, 0})
    ->Args({64 << 10, 1})
    ->Args({64 << 10, 0})
    ->UseRealTime();

// One pipelined batch: completions count down, the last one notifies.
struct Batch {
  std::atomic<int> remaining{kPipelineDepth};
  Mutex mu;
  absl::Status first_error ABSL_GUARDED_BY(mu);
  Notification all_done;

  void Done(absl::Status s) {
    if (!s.ok()) {
      MutexLock lock(&mu);
      if (first_error.ok()) first_error = std::move(s);
    }
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      all_done.Notify();
    }
  }
};

void BM_PipelinedCalls(benchmark::State& state) {
  EchoLoopback loopback(state.range(1) != 0);
  if (absl::Status s = loopback.Start(); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  const echo::EchoRequest request = MakeRequest(state.range(0));
  const CallOptions options;
  std::vector<echo::EchoResponse> responses(kPipelineDepth);
  for (auto _ : state) {
    Batch batch;
    for (echo::EchoResponse& response : responses) {
      loopback.channel().CallAsync(
          echo::kEchoMethod, request, &response, options,
          [&batch](absl::Status s) { batch.Done(std::move(s)); });
    }
    batch.all_done.WaitForNotification();
    MutexLock lock(&batch.mu);
    if (!batch.first_error.ok()) {
      state.SkipWithError(batch.first_error.ToString().c_str());
      break;
    }
  }
  for (const echo::EchoResponse& response : responses) {
    if (response.message().size() != request.message().size()) {
      state.SkipWithError("an echoed message has the wrong size");
      break;
    }
  }
  SetCallCounters(state, state.iterations() * kPipelineDepth, state.range(0));
}
BENCHMARK(BM_PipelinedCalls)
    ->ArgNames({"message_bytes", "metrics"})
    ->Args({64, 1})
    ->Args({64, 0})
    ->Args({64 << 10, 1})
    ->Args({64 << 10, 0})
    ->UseRealTime();

}  // namespace
}  // namespace bevrpc
