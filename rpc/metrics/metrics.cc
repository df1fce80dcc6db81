#include "rpc/metrics/metrics.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bevrpc::metrics {
namespace {

using internal::SlotShape;

constexpr char kOverflowLabel[] = "__overflow__";
constexpr char kOverflowFamily[] = "bevrpc_metrics_series_overflow_total";

bool IsNameStart(char c, bool colon_ok) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (colon_ok && c == ':');
}
bool IsNameChar(char c, bool colon_ok) {
  return IsNameStart(c, colon_ok) || (c >= '0' && c <= '9');
}

absl::Status ValidateName(absl::string_view what, absl::string_view name,
                          bool colon_ok) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  for (size_t i = 0; i < name.size(); ++i) {
    const bool ok = i == 0 ? IsNameStart(name[i], colon_ok)
                           : IsNameChar(name[i], colon_ok);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", name, "' has invalid character '",
          name.substr(i, 1), "' at position ", i, " (allowed: ",
          colon_ok ? "[a-zA-Z_:][a-zA-Z0-9_:]*" : "[a-zA-Z_][a-zA-Z0-9_]*",
          ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(MetricType type, const MetricSpec& spec) {
  if (absl::Status s = ValidateMetricName(spec.name); !s.ok()) return s;
  if (type == MetricType::kCounter && absl::EndsWith(spec.name, "_total")) {
    return absl::InvalidArgumentError(
        absl::StrCat("counter name '", spec.name,
                     "' must not end in _total: the exposition appends it"));
  }
  if (!spec.unit.empty()) {
    if (absl::Status s = ValidateName("unit", spec.unit, false); !s.ok()) {
      return s;
    }
    if (!absl::EndsWith(spec.name, absl::StrCat("_", spec.unit))) {
      return absl::InvalidArgumentError(
          absl::StrCat("metric name '", spec.name, "' must end in _",
                       spec.unit, " (its unit)"));
    }
  }
  for (size_t i = 0; i < spec.label_names.size(); ++i) {
    const std::string& label = spec.label_names[i];
    if (absl::Status s = ValidateLabelName(label); !s.ok()) return s;
    if (type == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(absl::StrCat(
          "histogram '", spec.name, "' may not have a label named le"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (spec.label_names[j] == label) {
        return absl::InvalidArgumentError(absl::StrCat(
            "metric '", spec.name, "' has label '", label, "' twice"));
      }
    }
  }
  if (spec.max_series == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric '", spec.name, "' has max_series 0"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SampleNames(MetricType type, const std::string& name) {
  switch (type) {
    case MetricType::kCounter:
      return {name + "_total"};
    case MetricType::kGauge:
      return {name};
    case MetricType::kHistogram:
      return {name, name + "_bucket", name + "_sum", name + "_count"};
  }
  return {};
}

bool SameOptions(const HistogramOptions& a, const HistogramOptions& b) {
  return a.min_value == b.min_value && a.max_value == b.max_value &&
         a.sub_buckets_per_octave == b.sub_buckets_per_octave &&
         a.exported_buckets_per_octave == b.exported_buckets_per_octave;
}

int CompareLabels(const std::vector<std::string>& a,
                  absl::Span<const absl::string_view> b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const int c = absl::string_view(a[i]).compare(b[i]);
    if (c != 0) return c;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

}  // namespace

absl::Status ValidateMetricName(absl::string_view name) {
  return ValidateName("metric name", name, true);
}

absl::Status ValidateLabelName(absl::string_view name) {
  if (absl::Status s = ValidateName("label name", name, false); !s.ok()) {
    return s;
  }
  if (absl::StartsWith(name, "__")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label name '", name, "' starts with __ (reserved for Prometheus)"));
  }
  return absl::OkStatus();
}

// --- Series ---------------------------------------------------------------

Counter::~Counter() {
  if (owns_slot_) internal::FreeSlots(slot_, SlotShape{1, 0});
}

uint64_t Counter::Value() const {
  if (!owns_slot_) return 0;
  uint64_t v = 0;
  internal::SumSlots(slot_, SlotShape{1, 0}, &v, nullptr);
  return v;
}

void Counter::Read(SeriesSnapshot* out) const {
  out->value = static_cast<double>(Value());
}

Gauge::~Gauge() {
  if (owns_slot_) internal::FreeSlots(slot_, SlotShape{1, 1});
}

double Gauge::Value() const {
  uint64_t steps = 0;
  double deltas = 0;
  if (owns_slot_) internal::SumSlots(slot_, SlotShape{1, 1}, &steps, &deltas);
  return internal::BitsToDouble(set_bits_.load(std::memory_order_relaxed)) +
         static_cast<double>(static_cast<int64_t>(steps)) + deltas;
}

void Gauge::Read(SeriesSnapshot* out) const { out->value = Value(); }

Histogram::~Histogram() {
  if (owns_slots_) internal::FreeSlots(base_, SlotShape{sum_offset_, 1});
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot out;
  out.layout = layout_;
  out.counts.assign(sum_offset_, 0);
  if (!owns_slots_) return out;
  internal::SumSlots(base_, SlotShape{sum_offset_, 1}, out.counts.data(),
                     &out.sum);
  for (uint64_t c : out.counts) out.count += c;
  return out;
}

void Histogram::Read(SeriesSnapshot* out) const { out->histogram = Snapshot(); }

CallbackHandle& CallbackHandle::operator=(CallbackHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    family_ = std::exchange(other.family_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

void CallbackHandle::Reset() {
  if (family_ != nullptr) std::exchange(family_, nullptr)->RemoveCallback(id_);
}

// --- FamilyCore -------------------------------------------------------------

namespace internal {

bool FamilyCore::LabelsLess::operator()(
    const std::vector<std::string>& a,
    absl::Span<const absl::string_view> b) const {
  return CompareLabels(a, b) < 0;
}

bool FamilyCore::LabelsLess::operator()(
    absl::Span<const absl::string_view> a,
    const std::vector<std::string>& b) const {
  return CompareLabels(b, a) > 0;
}

FamilyCore::FamilyCore(MetricType type, MetricSpec spec,
                       std::shared_ptr<const BucketLayout> layout)
    : type_(type), spec_(std::move(spec)), layout_(std::move(layout)) {}

FamilyCore::~FamilyCore() = default;

std::string FamilyCore::ExportedName() const {
  return type_ == MetricType::kCounter ? spec_.name + "_total" : spec_.name;
}

std::unique_ptr<SeriesBase> FamilyCore::MakeSeries(bool use_sink,
                                                   bool* owns) const {
  SlotShape shape{1, 0};
  if (type_ == MetricType::kGauge) shape = SlotShape{1, 1};
  if (type_ == MetricType::kHistogram) {
    shape = SlotShape{static_cast<uint32_t>(layout_->num_buckets()), 1};
  }
  std::optional<uint32_t> base;
  if (!use_sink) base = AllocateSlots(shape);
  *owns = base.has_value();
  const uint32_t slot = base.value_or(kSinkSlot);
  switch (type_) {
    case MetricType::kCounter:
      return std::unique_ptr<SeriesBase>(new Counter(slot, *owns));
    case MetricType::kGauge:
      return std::unique_ptr<SeriesBase>(new Gauge(slot, *owns));
    case MetricType::kHistogram:
      return std::unique_ptr<SeriesBase>(new Histogram(layout_, slot, *owns));
  }
  return nullptr;
}

absl::StatusOr<SeriesBase*> FamilyCore::TryGet(
    absl::Span<const absl::string_view> labels) {
  if (labels.size() != spec_.label_names.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric '", spec_.name, "' takes ", spec_.label_names.size(),
        " label values (", absl::StrJoin(spec_.label_names, ", "), "), got ",
        labels.size()));
  }
  if (!labels.empty() &&
      std::all_of(labels.begin(), labels.end(),
                  [](absl::string_view v) { return v == kOverflowLabel; })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric '", spec_.name, "': label values ", kOverflowLabel,
        " are reserved for the overflow series"));
  }
  MutexLock lock(&mu_);
  auto it = series_.find(labels);
  if (it != series_.end()) {
    if (it->second.series != nullptr) return it->second.series.get();
    return absl::InvalidArgumentError(
        absl::StrCat("metric '", spec_.name, "' {",
                     absl::StrJoin(labels, ","), "} is a callback series"));
  }
  if (series_.size() >= spec_.max_series) {
    return absl::ResourceExhaustedError(
        absl::StrCat("metric '", spec_.name, "' already has max_series ",
                     spec_.max_series, " series"));
  }
  bool owns = false;
  std::unique_ptr<SeriesBase> series = MakeSeries(false, &owns);
  if (!owns) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "metric '", spec_.name, "': the process's metric cells (",
        kMaxBlocks * kBlockSlots, ") are used up"));
  }
  SeriesBase* raw = series.get();
  series_.emplace(std::vector<std::string>(labels.begin(), labels.end()),
                  Entry{std::move(series), nullptr, 0});
  return raw;
}

SeriesBase* FamilyCore::Get(absl::Span<const absl::string_view> labels) {
  absl::StatusOr<SeriesBase*> series = TryGet(labels);
  if (series.ok()) return *series;
  overflowed_.fetch_add(1, std::memory_order_relaxed);
  MutexLock lock(&mu_);
  return OverflowSeries();
}

SeriesBase* FamilyCore::OverflowSeries() {
  // A family without labels has nowhere to show an overflow series (it
  // would repeat the sample name): its writes go to the sink, and only the
  // overflow count shows.
  if (overflow_ == nullptr) {
    overflow_ =
        MakeSeries(spec_.label_names.empty(), &overflow_owns_slots_);
  }
  return overflow_.get();
}

absl::StatusOr<CallbackHandle> FamilyCore::AddCallback(
    std::vector<std::string> labels, std::function<double()> read) {
  if (labels.size() != spec_.label_names.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric '", spec_.name, "' takes ", spec_.label_names.size(),
        " label values, got ", labels.size()));
  }
  MutexLock lock(&mu_);
  if (series_.count(labels) != 0) {
    return absl::AlreadyExistsError(absl::StrCat(
        "metric '", spec_.name, "' already has series {",
        absl::StrJoin(labels, ","), "}"));
  }
  if (series_.size() >= spec_.max_series) {
    return absl::ResourceExhaustedError(
        absl::StrCat("metric '", spec_.name, "' already has max_series ",
                     spec_.max_series, " series"));
  }
  const uint64_t id = next_callback_id_++;
  series_.emplace(std::move(labels), Entry{nullptr, std::move(read), id});
  return CallbackHandle(this, id);
}

void FamilyCore::RemoveCallback(uint64_t id) {
  MutexLock lock(&mu_);
  for (auto it = series_.begin(); it != series_.end(); ++it) {
    if (it->second.series == nullptr && it->second.callback_id == id) {
      series_.erase(it);
      return;
    }
  }
}

void FamilyCore::Collect(FamilySnapshot* out) const {
  out->type = type_;
  out->name = ExportedName();
  out->help = spec_.help;
  out->unit = spec_.unit;
  out->label_names = spec_.label_names;
  MutexLock lock(&mu_);
  out->series.reserve(series_.size() + 1);
  for (const auto& [labels, entry] : series_) {
    SeriesSnapshot& s = out->series.emplace_back();
    s.label_values = labels;
    if (entry.series != nullptr) {
      entry.series->Read(&s);
    } else {
      s.value = entry.callback();
    }
  }
  if (overflow_ != nullptr && overflow_owns_slots_) {
    SeriesSnapshot s;
    s.label_values.assign(spec_.label_names.size(), kOverflowLabel);
    overflow_->Read(&s);
    auto at = std::lower_bound(
        out->series.begin(), out->series.end(), s,
        [](const SeriesSnapshot& a, const SeriesSnapshot& b) {
          return a.label_values < b.label_values;
        });
    out->series.insert(at, std::move(s));
  }
}

}  // namespace internal

absl::StatusOr<Counter*> CounterFamily::TryGet(
    absl::Span<const absl::string_view> label_values) {
  absl::StatusOr<internal::SeriesBase*> s = core_.TryGet(label_values);
  if (!s.ok()) return s.status();
  return static_cast<Counter*>(*s);
}

absl::StatusOr<Gauge*> GaugeFamily::TryGet(
    absl::Span<const absl::string_view> label_values) {
  absl::StatusOr<internal::SeriesBase*> s = core_.TryGet(label_values);
  if (!s.ok()) return s.status();
  return static_cast<Gauge*>(*s);
}

absl::StatusOr<Histogram*> HistogramFamily::TryGet(
    absl::Span<const absl::string_view> label_values) {
  absl::StatusOr<internal::SeriesBase*> s = core_.TryGet(label_values);
  if (!s.ok()) return s.status();
  return static_cast<Histogram*>(*s);
}

// --- MetricsRegistry ----------------------------------------------------------

MetricsRegistry::MetricsRegistry() {
  MutexLock lock(&mu_);
  sample_names_[kOverflowFamily] = kOverflowFamily;
}

MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry& MetricsRegistry::Default() {
  static MetricsRegistry* registry = new MetricsRegistry();
  return *registry;
}

absl::StatusOr<internal::FamilyCore*> MetricsRegistry::FindCompatible(
    MetricType type, const MetricSpec& spec, const HistogramOptions* options) {
  auto it = families_.find(spec.name);
  if (it != families_.end()) {
    const internal::FamilyCore& core = *it->second.core;
    const MetricSpec& old = core.spec();
    const bool same =
        core.type() == type && old.help == spec.help &&
        old.unit == spec.unit && old.label_names == spec.label_names &&
        old.max_series == spec.max_series &&
        (options == nullptr || SameOptions(core.layout()->options(), *options));
    if (same) return it->second.core;
    return absl::AlreadyExistsError(absl::StrCat(
        "metric '", spec.name, "' is already registered as a ",
        MetricTypeName(core.type()), " with labels (",
        absl::StrJoin(old.label_names, ", "),
        ") and a different type, help, unit, labels, max_series or buckets"));
  }
  for (const std::string& sample : SampleNames(type, spec.name)) {
    auto clash = sample_names_.find(sample);
    if (clash != sample_names_.end()) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric '", spec.name, "' would export '", sample,
                       "', already exported by '", clash->second, "'"));
    }
  }
  return nullptr;
}

void MetricsRegistry::Add(Registered registered) {
  const MetricSpec& spec = registered.core->spec();
  for (const std::string& sample :
       SampleNames(registered.core->type(), spec.name)) {
    sample_names_[sample] = spec.name;
  }
  const std::string name = spec.name;
  families_.emplace(name, std::move(registered));
}

absl::StatusOr<CounterFamily*> MetricsRegistry::RegisterCounterFamily(
    const MetricSpec& spec) {
  if (absl::Status s = ValidateSpec(MetricType::kCounter, spec); !s.ok()) {
    return s;
  }
  MutexLock lock(&mu_);
  absl::StatusOr<internal::FamilyCore*> found =
      FindCompatible(MetricType::kCounter, spec, nullptr);
  if (!found.ok()) return found.status();
  if (*found != nullptr) return families_.at(spec.name).counter.get();
  Registered r;
  r.counter.reset(new CounterFamily(spec));
  r.core = &r.counter->core_;
  CounterFamily* family = r.counter.get();
  Add(std::move(r));
  return family;
}

absl::StatusOr<GaugeFamily*> MetricsRegistry::RegisterGaugeFamily(
    const MetricSpec& spec) {
  if (absl::Status s = ValidateSpec(MetricType::kGauge, spec); !s.ok()) {
    return s;
  }
  MutexLock lock(&mu_);
  absl::StatusOr<internal::FamilyCore*> found =
      FindCompatible(MetricType::kGauge, spec, nullptr);
  if (!found.ok()) return found.status();
  if (*found != nullptr) return families_.at(spec.name).gauge.get();
  Registered r;
  r.gauge.reset(new GaugeFamily(spec));
  r.core = &r.gauge->core_;
  GaugeFamily* family = r.gauge.get();
  Add(std::move(r));
  return family;
}

absl::StatusOr<HistogramFamily*> MetricsRegistry::RegisterHistogramFamily(
    const MetricSpec& spec, const HistogramOptions& options) {
  if (absl::Status s = ValidateSpec(MetricType::kHistogram, spec); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::shared_ptr<const BucketLayout>> layout =
      BucketLayout::Create(options);
  if (!layout.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric '", spec.name, "': ", layout.status().message()));
  }
  MutexLock lock(&mu_);
  absl::StatusOr<internal::FamilyCore*> found =
      FindCompatible(MetricType::kHistogram, spec, &options);
  if (!found.ok()) return found.status();
  if (*found != nullptr) return families_.at(spec.name).histogram.get();
  Registered r;
  r.histogram.reset(new HistogramFamily(spec, *std::move(layout)));
  r.core = &r.histogram->core_;
  HistogramFamily* family = r.histogram.get();
  Add(std::move(r));
  return family;
}

RegistrySnapshot MetricsRegistry::Collect() const {
  RegistrySnapshot out;
  out.time = absl::Now();
  FamilySnapshot overflow;
  overflow.type = MetricType::kCounter;
  overflow.name = kOverflowFamily;
  overflow.help =
      "Series lookups answered with a family's overflow series (the family "
      "had max_series series, or the label count was wrong).";
  overflow.label_names = {"family"};
  MutexLock lock(&mu_);
  for (const auto& [name, registered] : families_) {
    FamilySnapshot family;
    registered.core->Collect(&family);
    if (!family.series.empty()) out.families.push_back(std::move(family));
    if (uint64_t n = registered.core->overflowed_lookups(); n > 0) {
      SeriesSnapshot& s = overflow.series.emplace_back();
      s.label_values = {name};
      s.value = static_cast<double>(n);
    }
  }
  if (!overflow.series.empty()) out.families.push_back(std::move(overflow));
  std::sort(out.families.begin(), out.families.end(),
            [](const FamilySnapshot& a, const FamilySnapshot& b) {
              return a.name < b.name;
            });
  return out;
}

}  // namespace bevrpc::metrics
