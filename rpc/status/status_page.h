// StatusPage: the server's /status page. Once a second it reads the
// server's per-method metrics from a MetricsRegistry and keeps, per method,
// the last minutes of QPS, error rate, p50 and p99; it renders them as an
// HTML page (a summary and a table readable without JavaScript, plus one
// pair of Chart.js charts per method that refresh from the JSON variant)
// or as JSON (`/status?format=json`) for scripts.
//
//   StatusPageOptions options;
//   options.registry = &registry;          // the server's registry
//   auto page = std::make_unique<StatusPage>(options);
//   page->StartSampling();                 // its own thread, 1 sample/s
//   server.AddHttpPage("/status", "Status",
//       [p = page.get()](const admin::HttpRequest& r) { return p->Handle(r); });
//   server.AddHttpPage(kChartJsPath, "Chart.js", &ServeChartJs);
//
// What it reads (the names rpc/metrics families are registered under):
//   bevrpc_server_handled_total{service,method,code}   calls and errors
//                                                      (code != "OK")
//   bevrpc_server_handling_seconds{service,method}     p50/p99 of the calls
//                                                      ended since the last
//                                                      sample (bucket deltas)
//   bevrpc_server_in_flight{service,method}            in flight per method
//   bevrpc_server_connections                          open connections
// A family that is absent shows as "-" (null in JSON). The table lists every
// method (__unknown__ only once called); charts are drawn for methods
// called at least once when the page was rendered (reload for newer ones).
//
// Threads: Sample() is called by the sampling thread StartSampling() owns
// (or by a test with its own clock); Handle()/Render*() by the server's I/O
// threads. Both take one mutex; Sample() reads the registry (the costly
// part: Registry::Collect() runs every callback) before taking it, and
// Handle() only formats what was kept, so a page view never blocks on
// /proc reads and a sample never waits for a long render to start.
// Thread-safe.
//
// Bounds: at most `max_methods` methods are kept (a method first seen
// beyond that is counted in "methods not shown" and never kept); each
// keeps history / sample_interval points (default 600) of 4 numbers, and
// window / sample_interval + 1 cumulative histogram snapshots (default 11
// of 218 buckets): about 50 KiB per method, 5 MiB at the default bound.
#ifndef BEVRPC_RPC_STATUS_STATUS_PAGE_H_
#define BEVRPC_RPC_STATUS_STATUS_PAGE_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "rpc/admin/http_page.h"
#include "rpc/metrics/histogram_layout.h"
#include "rpc/metrics/metrics.h"
#include "rpc/metrics/time_series_ring.h"
#include "transport/sync.h"

namespace bevrpc::status {

struct StatusPageOptions {
  // Where the server's metrics are; borrowed, must outlive the page.
  // Default: &MetricsRegistry::Default().
  metrics::MetricsRegistry* registry = &metrics::MetricsRegistry::Default();
  // Page heading (the server's name and address, say). Default: "bevrpc
  // server".
  std::string title = "bevrpc server";
  // Uptime counts from here; InfinitePast() means "when the page is
  // constructed". Default: InfinitePast().
  absl::Time start_time = absl::InfinitePast();
  // How often the sampling thread samples. Default: 1 s.
  absl::Duration sample_interval = absl::Seconds(1);
  // How far back the charts go. Default: 10 minutes.
  absl::Duration history = absl::Minutes(10);
  // The table's "current" values are over the last `window`. Default: 10 s.
  absl::Duration window = absl::Seconds(10);
  // Most methods kept (see Bounds above). Default: 100.
  size_t max_methods = 100;
};

// Where servers serve the page.
inline constexpr char kStatusPath[] = "/status";

class StatusPage {
 public:
  explicit StatusPage(StatusPageOptions options);
  ~StatusPage();  // StopSampling().
  StatusPage(const StatusPage&) = delete;
  StatusPage& operator=(const StatusPage&) = delete;

  // Starts a thread that calls Sample(absl::Now()) every sample_interval
  // until StopSampling() or destruction. Idempotent.
  void StartSampling();
  // Stops and joins that thread; no Sample() from it after this returns.
  // Idempotent.
  void StopSampling();

  // Reads the registry once and adds a point per method: the rates and
  // quantiles between the previous sample and `now`. A method first seen
  // now counts from zero at the previous sample (its series did not exist
  // then); the first sample only sets the baseline. `now` must not go
  // backwards.
  void Sample(absl::Time now);

  // GET/HEAD /status: HTML, or JSON when request.WantsJson() ("?format=
  // json"); "?history=0" leaves the charts' points out of the JSON. 405
  // for other methods.
  admin::HttpResponse Handle(const admin::HttpRequest& request) const;

  // The page's two forms, as of `now` (uptime). Render*() take the lock.
  std::string RenderHtml(absl::Time now) const;
  std::string RenderJson(absl::Time now, bool with_history) const;

  // Methods kept, and methods seen but not kept (at max_methods).
  size_t num_methods() const;
  size_t methods_not_shown() const;

 private:
  // Cumulative totals of one method at one sample.
  struct Totals {
    double calls = 0;
    double errors = 0;
    metrics::HistogramSnapshot latency;
  };
  // One chart point: what happened between two samples.
  struct Point {
    double qps = 0;
    double error_rate = 0;  // errors / calls; 0 without calls
    double p50 = 0;         // seconds; NaN without calls
    double p99 = 0;
  };
  struct MethodState {
    MethodState(size_t totals_capacity, size_t points_capacity)
        : totals(totals_capacity), points(points_capacity) {}
    metrics::TimeSeriesRing<Totals> totals;  // the last window, for the table
    metrics::TimeSeriesRing<Point> points;   // the charts
    double in_flight = 0;
    bool has_in_flight = false;
  };
  // The table's values over the last window.
  struct Current {
    double qps = 0;
    double error_rate = 0;
    double p50 = 0;
    double p99 = 0;
    double calls = 0;
    double errors = 0;
    bool valid = false;  // two samples at least
  };
  using MethodKey = std::pair<std::string, std::string>;  // service, method

  void AppendJsonLocked(absl::Time now, bool with_history,
                        std::string* out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static bool EverCalled(const MethodState& state);
  static Current CurrentOf(const MethodState& state, absl::Duration window);
  void RunSampler();

  const StatusPageOptions options_;
  const size_t totals_capacity_;
  const size_t points_capacity_;

  mutable Mutex mu_;
  std::map<MethodKey, std::unique_ptr<MethodState>> methods_
      ABSL_GUARDED_BY(mu_);
  size_t methods_not_shown_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_sample_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  double connections_ ABSL_GUARDED_BY(mu_) = 0;
  bool has_connections_ ABSL_GUARDED_BY(mu_) = false;

  Mutex sampler_mu_;
  CondVar sampler_cv_;
  bool stop_sampler_ ABSL_GUARDED_BY(sampler_mu_) = false;
  std::thread sampler_;  // only Start/StopSampling() touch it
};

}  // namespace bevrpc::status

#endif  // BEVRPC_RPC_STATUS_STATUS_PAGE_H_
