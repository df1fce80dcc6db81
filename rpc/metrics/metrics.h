// Metrics: counters, gauges and histograms with Prometheus-style labels,
// kept in a MetricsRegistry that renders them for /metrics (Prometheus text
// format 0.0.4) and as JSON, and that live pages can snapshot.
//
// Families are registered once, with fixed label names; each distinct set
// of label values is one series, created on first Get() and kept for the
// registry's life. Get() may lock and allocate: resolve a series once (per
// method at registration, per status code lazily) and keep the pointer.
// Writing to a series is lock-free and allocation-free: each thread adds to
// its own cell with a relaxed load and store, and a read sums all threads'
// cells (a thread's first write to a block of 1024 cells allocates that
// block once; cells of exited threads are folded into a residue, so nothing
// is lost).
//
//   MetricsRegistry& registry = MetricsRegistry::Default();
//   MetricSpec spec;
//   spec.name = "bevrpc_server_handled";         // exported with _total
//   spec.help = "RPCs completed on the server, by status code.";
//   spec.label_names = {"service", "method", "code"};
//   absl::StatusOr<CounterFamily*> handled =
//       registry.RegisterCounterFamily(spec);
//   Counter* ok = (*handled)->Get({"bevrpc.echo.Echo", "Echo", "OK"});
//   ok->Increment();                                  // hot path
//
//   MetricSpec latency_spec;
//   latency_spec.name = "bevrpc_server_handling_seconds";
//   latency_spec.help = "Time from request to response on the server.";
//   latency_spec.unit = "seconds";
//   latency_spec.label_names = {"service", "method"};
//   absl::StatusOr<HistogramFamily*> latency =
//       registry.RegisterHistogramFamily(latency_spec);   // 1 us .. 100 s
//   Histogram* echo = (*latency)->Get({"bevrpc.echo.Echo", "Echo"});
//   echo->ObserveDuration(absl::Now() - start);
//
//   std::string page;
//   registry.RenderPrometheus(&page);
//
// User metrics: a service adds its own families to the same registry
// (MetricsRegistry::Default(), or the one its server was given), exactly as
// above; they appear on the server's /metrics next to bevrpc's own. Pick a
// name prefix of your own (not "bevrpc_" or "process_").
//
// Registering the same name again with the same type, help, unit, labels
// and options returns the existing family, so two servers in one process
// share their families; anything different is ALREADY_EXISTS.
//
// Bounds: a family holds at most `max_series` series (MetricSpec). At the
// bound, and for a label count that does not match, Get() returns the
// family's overflow series (every label value "__overflow__") and counts
// the lookup in bevrpc_metrics_series_overflow_total{family="NAME"}
// (a family without labels has no overflow series to show; only the count
// shows). TryGet() returns the error instead. The process holds at most
// 4M cells in all (kMaxBlocks * kBlockSlots); past that, new series are
// refused the same way. Memory: a thread that writes to any series holds a
// 32 KiB index, and 8 bytes per counter or gauge and 8 bytes per bucket
// (default 218) plus 8 for a histogram it writes to, allocated in 8 KiB
// blocks of 1024 cells.
//
// Callback series are computed when read (open connections, queue sizes,
// RSS): AddCallback() returns a CallbackHandle that removes the series when
// destroyed. Callbacks run on the reading thread, with the family's lock
// held: keep them quick, and never call into the registry from one.
//
// Thread-safety: MetricsRegistry, the families and the series are
// thread-safe. Series pointers and families stay valid until the registry
// is destroyed (Default() never is); a registry may be destroyed only when
// no thread writes to its series any more.
#ifndef BEVRPC_RPC_METRICS_METRICS_H_
#define BEVRPC_RPC_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "rpc/metrics/histogram_layout.h"
#include "rpc/metrics/internal/thread_cells.h"
#include "rpc/metrics/snapshot.h"
#include "transport/sync.h"

namespace bevrpc::metrics {

struct MetricSpec {
  // Prometheus metric name, [a-zA-Z_:][a-zA-Z0-9_:]*. For counters leave
  // out "_total": the exposition appends it. No default.
  std::string name;
  // One line saying what is counted. Default: "".
  std::string help;
  // Base unit, which the name must end with after "_" ("seconds",
  // "bytes"); empty for plain counts. Default: "".
  std::string unit;
  // Label names, [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", no
  // duplicates, and not "le" for histograms. Default: none.
  std::vector<std::string> label_names;
  // Most series (label value sets, callbacks included) in the family.
  // Default: 10000.
  size_t max_series = 10000;
};

class CounterFamily;
class GaugeFamily;
class HistogramFamily;
class MetricsRegistry;

namespace internal {

// One series: knows how to read itself. Writes are non-virtual.
class SeriesBase {
 public:
  virtual ~SeriesBase() = default;
  virtual void Read(SeriesSnapshot* out) const = 0;
};

class FamilyCore;

}  // namespace internal

// A monotonically increasing count. Thread-safe; Add() is lock-free.
class Counter final : public internal::SeriesBase {
 public:
  ~Counter() override;
  void Increment() { Add(1); }
  void Add(uint64_t n) { internal::AddInt(internal::ThreadCell(slot_), n); }
  // Sum over all threads. Locks; for reads, not the hot path.
  uint64_t Value() const;

  void Read(SeriesSnapshot* out) const override;

 private:
  friend class internal::FamilyCore;
  Counter(uint32_t slot, bool owns_slot) : slot_(slot), owns_slot_(owns_slot) {}
  const uint32_t slot_;
  const bool owns_slot_;
};

// A level that goes up and down. Use it one way: Set() a sampled level, or
// Add()/Sub() a level tracked by its changes (calls in flight). The value is
// the last Set() plus every Add() and Sub(). Thread-safe; Add() is
// lock-free (a per-thread delta); Set() is one relaxed store to a shared
// word, so keep one writer per Set() gauge.
class Gauge final : public internal::SeriesBase {
 public:
  ~Gauge() override;
  void Set(double value) {
    set_bits_.store(internal::DoubleToBits(value), std::memory_order_relaxed);
  }
  void Add(double delta) {
    internal::AddDouble(internal::ThreadCell(slot_) + 1, delta);
  }
  void Sub(double delta) { Add(-delta); }
  // Whole steps (calls in flight) go to an integer cell: an integer add is
  // half the cost of a floating-point one, and a level counted in steps
  // stays exact however long it runs.
  void Increment() { AddSteps(1); }
  void Decrement() { AddSteps(-1); }
  void AddSteps(int64_t n) {
    internal::AddInt(internal::ThreadCell(slot_), static_cast<uint64_t>(n));
  }
  // Locks; for reads, not the hot path.
  double Value() const;

  void Read(SeriesSnapshot* out) const override;

 private:
  friend class internal::FamilyCore;
  Gauge(uint32_t slot, bool owns_slot) : slot_(slot), owns_slot_(owns_slot) {}
  std::atomic<uint64_t> set_bits_{0};  // 0.0
  // Slots: slot_ counts steps (int64 in two's complement: the sum over
  // threads wraps to the right value), slot_ + 1 sums Add()'s deltas.
  const uint32_t slot_;
  const bool owns_slot_;
};

// A distribution (latencies in seconds, sizes in bytes) in log-linear
// buckets (histogram_layout.h). Thread-safe; Observe() is lock-free.
class Histogram final : public internal::SeriesBase {
 public:
  ~Histogram() override;
  // Counts `value` in its bucket and adds it to the sum; NaN is ignored.
  void Observe(double value) {
    const int bucket = layout_->IndexOf(value);
    if (bucket < 0) return;
    std::atomic<uint64_t>* cells = internal::ThreadCell(base_);
    internal::AddInt(cells + bucket, 1);
    internal::AddDouble(cells + sum_offset_, value);
  }
  // Observe() in seconds. (Whole nanoseconds times 1e-9: a few
  // instructions, where absl::ToDoubleSeconds divides two Durations.)
  void ObserveDuration(absl::Duration d) {
    Observe(d < kLongest ? static_cast<double>(absl::ToInt64Nanoseconds(d)) *
                               1e-9
                         : absl::ToDoubleSeconds(d));
  }
  // Observe() in seconds of a duration in nanoseconds.
  void ObserveNanos(int64_t ns) { Observe(static_cast<double>(ns) * 1e-9); }
  // Counts, sum and count now. Locks; for reads, not the hot path.
  HistogramSnapshot Snapshot() const;

  void Read(SeriesSnapshot* out) const override;

 private:
  static constexpr absl::Duration kLongest = absl::Hours(24 * 365);
  friend class internal::FamilyCore;
  Histogram(std::shared_ptr<const BucketLayout> layout, uint32_t base,
            bool owns_slots)
      : layout_(std::move(layout)),
        base_(base),
        sum_offset_(layout_->num_buckets()),
        owns_slots_(owns_slots) {}
  const std::shared_ptr<const BucketLayout> layout_;
  const uint32_t base_;
  const uint32_t sum_offset_;
  const bool owns_slots_;
};

// Removes a callback series when destroyed or Reset(); once that returns
// the callback is never called again (a read in progress is waited for).
// Must not outlive the registry. Movable; call from any thread.
class CallbackHandle {
 public:
  CallbackHandle() = default;
  CallbackHandle(CallbackHandle&& other) noexcept { *this = std::move(other); }
  CallbackHandle& operator=(CallbackHandle&& other) noexcept;
  ~CallbackHandle() { Reset(); }

  void Reset();
  // Keeps the callback for the registry's life (process metrics).
  void Release() { family_ = nullptr; }

 private:
  friend class internal::FamilyCore;
  CallbackHandle(internal::FamilyCore* family, uint64_t id)
      : family_(family), id_(id) {}
  internal::FamilyCore* family_ = nullptr;
  uint64_t id_ = 0;
};

namespace internal {

// The label bookkeeping shared by the three family types.
class FamilyCore {
 public:
  FamilyCore(MetricType type, MetricSpec spec,
             std::shared_ptr<const BucketLayout> layout);
  ~FamilyCore();

  MetricType type() const { return type_; }
  const MetricSpec& spec() const { return spec_; }
  const std::shared_ptr<const BucketLayout>& layout() const { return layout_; }
  std::string ExportedName() const;

  absl::StatusOr<SeriesBase*> TryGet(absl::Span<const absl::string_view> labels);
  SeriesBase* Get(absl::Span<const absl::string_view> labels);
  absl::StatusOr<CallbackHandle> AddCallback(std::vector<std::string> labels,
                                             std::function<double()> read);
  void RemoveCallback(uint64_t id);
  // Get() calls answered with the overflow series.
  uint64_t overflowed_lookups() const {
    return overflowed_.load(std::memory_order_relaxed);
  }
  void Collect(FamilySnapshot* out) const;

 private:
  struct LabelsLess {
    using is_transparent = void;
    bool operator()(const std::vector<std::string>& a,
                    const std::vector<std::string>& b) const {
      return a < b;
    }
    bool operator()(const std::vector<std::string>& a,
                    absl::Span<const absl::string_view> b) const;
    bool operator()(absl::Span<const absl::string_view> a,
                    const std::vector<std::string>& b) const;
  };
  struct Entry {
    std::unique_ptr<SeriesBase> series;  // null for a callback
    std::function<double()> callback;
    uint64_t callback_id = 0;
  };

  // A new series with its own slots, or one writing to the sink when
  // `use_sink` or when the process-wide slot space is used up (`owns`
  // false).
  std::unique_ptr<SeriesBase> MakeSeries(bool use_sink, bool* owns) const;
  SeriesBase* OverflowSeries() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MetricType type_;
  const MetricSpec spec_;
  const std::shared_ptr<const BucketLayout> layout_;
  mutable Mutex mu_;
  std::map<std::vector<std::string>, Entry, LabelsLess> series_
      ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SeriesBase> overflow_ ABSL_GUARDED_BY(mu_);
  bool overflow_owns_slots_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_callback_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::atomic<uint64_t> overflowed_{0};
};

}  // namespace internal

// Counters sharing a name and label names. Thread-safe.
class CounterFamily {
 public:
  // The series with these label values (one per label name, in order),
  // created on first use; never null. See "Bounds" above.
  Counter* Get(std::initializer_list<absl::string_view> label_values) {
    return Get(absl::MakeConstSpan(label_values.begin(), label_values.size()));
  }
  Counter* Get(absl::Span<const absl::string_view> label_values) {
    return static_cast<Counter*>(core_.Get(label_values));
  }
  // As Get(), but INVALID_ARGUMENT for a wrong label count and
  // RESOURCE_EXHAUSTED at max_series or when slot space ran out.
  absl::StatusOr<Counter*> TryGet(
      absl::Span<const absl::string_view> label_values);
  // A series whose value `read` returns at each read (a total kept
  // elsewhere, CPU seconds). ALREADY_EXISTS if these labels are taken.
  absl::StatusOr<CallbackHandle> AddCallback(
      std::vector<std::string> label_values, std::function<double()> read) {
    return core_.AddCallback(std::move(label_values), std::move(read));
  }
  const MetricSpec& spec() const { return core_.spec(); }

 private:
  friend class MetricsRegistry;
  explicit CounterFamily(MetricSpec spec)
      : core_(MetricType::kCounter, std::move(spec), nullptr) {}
  internal::FamilyCore core_;
};

// Gauges sharing a name and label names. Thread-safe. As CounterFamily.
class GaugeFamily {
 public:
  Gauge* Get(std::initializer_list<absl::string_view> label_values) {
    return Get(absl::MakeConstSpan(label_values.begin(), label_values.size()));
  }
  Gauge* Get(absl::Span<const absl::string_view> label_values) {
    return static_cast<Gauge*>(core_.Get(label_values));
  }
  absl::StatusOr<Gauge*> TryGet(
      absl::Span<const absl::string_view> label_values);
  // A series whose value `read` returns at each read (connections, queue
  // length, RSS).
  absl::StatusOr<CallbackHandle> AddCallback(
      std::vector<std::string> label_values, std::function<double()> read) {
    return core_.AddCallback(std::move(label_values), std::move(read));
  }
  const MetricSpec& spec() const { return core_.spec(); }

 private:
  friend class MetricsRegistry;
  explicit GaugeFamily(MetricSpec spec)
      : core_(MetricType::kGauge, std::move(spec), nullptr) {}
  internal::FamilyCore core_;
};

// Histograms sharing a name, label names and bucket layout. Thread-safe.
// As CounterFamily, without callbacks.
class HistogramFamily {
 public:
  Histogram* Get(std::initializer_list<absl::string_view> label_values) {
    return Get(absl::MakeConstSpan(label_values.begin(), label_values.size()));
  }
  Histogram* Get(absl::Span<const absl::string_view> label_values) {
    return static_cast<Histogram*>(core_.Get(label_values));
  }
  absl::StatusOr<Histogram*> TryGet(
      absl::Span<const absl::string_view> label_values);
  const MetricSpec& spec() const { return core_.spec(); }
  const BucketLayout& layout() const { return *core_.layout(); }

 private:
  friend class MetricsRegistry;
  HistogramFamily(MetricSpec spec, std::shared_ptr<const BucketLayout> layout)
      : core_(MetricType::kHistogram, std::move(spec), std::move(layout)) {}
  internal::FamilyCore core_;
};

// The set of families a process (or a test) exposes. Thread-safe.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The process-wide registry; never destroyed.
  static MetricsRegistry& Default();

  // The family named spec.name, created if new. INVALID_ARGUMENT for a bad
  // name, unit or label name; ALREADY_EXISTS when the name (or a sample
  // name it exports) is taken by a different family. The family is owned
  // by the registry.
  absl::StatusOr<CounterFamily*> RegisterCounterFamily(const MetricSpec& spec);
  absl::StatusOr<GaugeFamily*> RegisterGaugeFamily(const MetricSpec& spec);
  absl::StatusOr<HistogramFamily*> RegisterHistogramFamily(
      const MetricSpec& spec, const HistogramOptions& options = {});

  // Every family with at least one series, sorted by exported name, plus
  // bevrpc_metrics_series_overflow_total when a family overflowed. Runs the
  // callbacks.
  RegistrySnapshot Collect() const;
  // Collect() in Prometheus text format 0.0.4 / JSON (exposition.h),
  // appended to `out`.
  void RenderPrometheus(std::string* out) const;
  void RenderJson(std::string* out) const;

 private:
  struct Registered {
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
    internal::FamilyCore* core = nullptr;
  };

  // The family already registered under spec.name (nullptr if none), or
  // ALREADY_EXISTS when it or its sample names clash.
  absl::StatusOr<internal::FamilyCore*> FindCompatible(
      MetricType type, const MetricSpec& spec, const HistogramOptions* options)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Add(Registered registered) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  // By spec name.
  std::map<std::string, Registered> families_ ABSL_GUARDED_BY(mu_);
  // Every sample name exported, to refuse clashes (a gauge "x_count"
  // against a histogram "x").
  std::map<std::string, std::string> sample_names_ ABSL_GUARDED_BY(mu_);
};

// Name checks the registry applies, for callers that build names.
// INVALID_ARGUMENT naming the offending character.
absl::Status ValidateMetricName(absl::string_view name);
absl::Status ValidateLabelName(absl::string_view name);

}  // namespace bevrpc::metrics

#endif  // BEVRPC_RPC_METRICS_METRICS_H_
