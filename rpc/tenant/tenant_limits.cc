#include "rpc/tenant/tenant_limits.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "rpc/internal/config_lines.h"
#include "rpc/wire_format.h"

namespace bevrpc::tenant {
namespace {

constexpr absl::string_view kOther = "__other__";
// bevrpc_tenant_bytes_total: read and written for each of 10000 tenants
// (the default max_tenants). Fixed, so that every limiter registers the
// same family.
constexpr size_t kMaxByteSeries = 2 * 10000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::Status CheckLimit(absl::string_view name, const TenantLimit& l) {
  if (!(l.requests_per_second >= 0) || !std::isfinite(l.requests_per_second) ||
      !(l.burst >= 0) || !std::isfinite(l.burst) || l.max_concurrent_calls < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tenant ", name, ": rate, burst and concurrency must be >= 0"));
  }
  return absl::OkStatus();
}

// The limit a limits-file line sets: `fields` are its NAME and then
// key=value settings.
absl::StatusOr<TenantLimit> ParseLimitFields(
    int line_no, const std::vector<absl::string_view>& fields) {
  TenantLimit limit;
  for (size_t i = 1; i < fields.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
    bool ok = false;
    if (kv.first == "read_bytes_per_sec") {
      ok = absl::SimpleAtoi(kv.second, &limit.byte_rate.read_bytes_per_sec);
    } else if (kv.first == "write_bytes_per_sec") {
      ok = absl::SimpleAtoi(kv.second, &limit.byte_rate.write_bytes_per_sec);
    } else if (kv.first == "rps") {
      ok = absl::SimpleAtod(kv.second, &limit.requests_per_second);
    } else if (kv.first == "burst") {
      ok = absl::SimpleAtod(kv.second, &limit.burst);
    } else if (kv.first == "concurrency") {
      ok = absl::SimpleAtoi(kv.second, &limit.max_concurrent_calls);
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_no, ": \"", fields[i],
          "\" is not rps=N, burst=N, concurrency=N, "
          "read_bytes_per_sec=BYTES or write_bytes_per_sec=BYTES (BYTES: "
          "a whole number of bytes per second)"));
    }
  }
  absl::Status s = CheckLimit(fields[0], limit);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line_no, ": ", s.message()));
  }
  return limit;
}

}  // namespace

struct TenantLimiter::Tenant {
  std::string name;
  TenantLimit limit;
  double burst = 0;
  Mutex mu;
  double tokens ABSL_GUARDED_BY(mu) = 0;
  int64_t refilled_ns ABSL_GUARDED_BY(mu) = 0;
  std::atomic<int> in_flight{0};
  // Recent average latency of its calls (EWMA), for the concurrency hint.
  std::atomic<int64_t> avg_latency_us{0};
  metrics::Counter* admitted = nullptr;
  metrics::Counter* rate_limited = nullptr;
  metrics::Counter* concurrency_limited = nullptr;
  metrics::Gauge* in_flight_gauge = nullptr;
  // Byte rate: the group, made once (Group()) and published in group_ready
  // for the calls after, and its bytes in metrics. Declared after the
  // group, the handles are destroyed first: no scrape reads a freed group.
  Mutex group_mu;
  bool group_tried ABSL_GUARDED_BY(group_mu) = false;
  std::unique_ptr<transport::RateLimitGroup> group ABSL_GUARDED_BY(group_mu);
  std::atomic<const transport::RateLimitGroup*> group_ready{nullptr};
  metrics::CallbackHandle bytes_read ABSL_GUARDED_BY(group_mu);
  metrics::CallbackHandle bytes_written ABSL_GUARDED_BY(group_mu);

  // Takes a token; false with the wait until one is there.
  bool TakeToken(int64_t now_ns, int64_t* wait_ms) {
    if (limit.requests_per_second <= 0) return true;
    MutexLock lock(&mu);
    const double rate = limit.requests_per_second;
    tokens = std::min(burst, tokens + (now_ns - refilled_ns) * rate / 1e9);
    refilled_ns = now_ns;
    if (tokens >= 1) {
      tokens -= 1;
      return true;
    }
    *wait_ms = static_cast<int64_t>(std::ceil((1 - tokens) / rate * 1000));
    return false;
  }
};

absl::StatusOr<std::shared_ptr<TenantLimiter>> TenantLimiter::Create(
    TenantLimitsOptions options) {
  for (const auto& [name, limit] : options.tenants) {
    absl::Status s = CheckLimit(name, limit);
    if (!s.ok()) return s;
  }
  absl::Status s = CheckLimit("*", options.default_limit);
  if (!s.ok()) return s;
  if (options.max_tenants < options.tenants.size() + 2) {
    options.max_tenants = options.tenants.size() + 2;
  }
  return std::shared_ptr<TenantLimiter>(new TenantLimiter(std::move(options)));
}

TenantLimiter::~TenantLimiter() {
  // The refill thread stops first: libevent does not wait for a refill
  // callback under way on another thread when its group is freed. Then
  // the groups, which are empty, as every connection of the servers using
  // the limiter is closed (see "Lifetime" in the header); then their loop.
  MutexLock loop_lock(&group_loop_mu_);
  if (group_loop_ != nullptr) group_loop_->Stop();
  {
    MutexLock lock(&mu_);
    tenants_.clear();
  }
  group_loop_.reset();
}

TenantLimiter::TenantLimiter(TenantLimitsOptions options)
    : options_(std::move(options)) {
  if (options_.metrics_registry != nullptr) {
    metrics::MetricSpec calls;
    calls.name = "bevrpc_tenant_calls";
    calls.help = "Calls by tenant and by what the tenant limits did with them.";
    calls.label_names = {"tenant", "result"};
    auto c = options_.metrics_registry->RegisterCounterFamily(calls);
    if (c.ok()) calls_ = *c;
    metrics::MetricSpec in_flight;
    in_flight.name = "bevrpc_tenant_in_flight";
    in_flight.help = "Calls of the tenant in flight.";
    in_flight.label_names = {"tenant"};
    auto g = options_.metrics_registry->RegisterGaugeFamily(in_flight);
    if (g.ok()) in_flight_ = *g;
    metrics::MetricSpec bytes;
    bytes.name = "bevrpc_tenant_bytes";
    bytes.help =
        "Bytes read from and written to the connections of tenants with a "
        "byte rate, while in the tenant's rate-limit group.";
    bytes.unit = "bytes";
    bytes.label_names = {"tenant", "direction"};
    bytes.max_series = kMaxByteSeries;
    auto b = options_.metrics_registry->RegisterCounterFamily(bytes);
    if (b.ok()) bytes_ = *b;
  }
  MutexLock lock(&mu_);
  for (const auto& [name, limit] : options_.tenants) {
    tenants_.emplace(name, Make(name, limit));
  }
}

std::unique_ptr<TenantLimiter::Tenant> TenantLimiter::Make(
    std::string name, const TenantLimit& limit) {
  auto t = std::make_unique<Tenant>();
  t->name = std::move(name);
  t->limit = limit;
  t->burst = limit.burst > 0 ? limit.burst
                             : std::max(1.0, limit.requests_per_second);
  {
    MutexLock lock(&t->mu);
    t->tokens = t->burst;
    t->refilled_ns = NowNs();
  }
  if (calls_ != nullptr) {
    t->admitted = calls_->Get({t->name, "admitted"});
    t->rate_limited = calls_->Get({t->name, "rate_limited"});
    t->concurrency_limited = calls_->Get({t->name, "concurrency_limited"});
  }
  if (in_flight_ != nullptr) t->in_flight_gauge = in_flight_->Get({t->name});
  return t;
}

TenantLimiter::Tenant* TenantLimiter::Find(absl::string_view key) {
  MutexLock lock(&mu_);
  auto it = tenants_.find(key);
  if (it != tenants_.end()) return it->second.get();
  std::string name(key);
  if (tenants_.size() + 1 >= options_.max_tenants) {
    // Full: unlisted newcomers share one entry.
    name = std::string(kOther);
    it = tenants_.find(name);
    if (it != tenants_.end()) return it->second.get();
  }
  Tenant* t = tenants_.emplace(name, Make(name, options_.default_limit))
                  .first->second.get();
  return t;
}

transport::EventLoop* TenantLimiter::GroupLoop() {
  MutexLock lock(&group_loop_mu_);
  if (group_loop_ == nullptr && !group_loop_failed_) {
    auto pool = transport::LoopPool::Start(1, "bevrpc-tenant");
    if (pool.ok()) {
      group_loop_ = *std::move(pool);
    } else {
      group_loop_failed_ = true;
    }
  }
  return group_loop_ == nullptr ? nullptr : group_loop_->loop(0);
}

const transport::RateLimitGroup* TenantLimiter::Group(Tenant* t) {
  if (!t->limit.byte_rate.enabled()) return nullptr;
  const transport::RateLimitGroup* ready =
      t->group_ready.load(std::memory_order_acquire);
  if (ready != nullptr) return ready;
  MutexLock lock(&t->group_mu);
  if (t->group_tried) return t->group.get();
  t->group_tried = true;
  // Either failure leaves the tenant's bytes unlimited rather than its
  // calls refused.
  transport::EventLoop* loop = GroupLoop();
  if (loop == nullptr) return nullptr;
  // Made on the thread that runs its refill timer, which libevent arms
  // before it makes the group's lock: made here, the first refill could
  // find no lock yet. Once per tenant, the call waits for that round trip.
  absl::StatusOr<std::unique_ptr<transport::RateLimitGroup>> group =
      absl::InternalError("not made");
  Notification made;
  loop->Post([&] {
    group = transport::RateLimitGroup::Create(loop, t->limit.byte_rate);
    made.Notify();
  });
  made.WaitForNotification();
  if (!group.ok()) return nullptr;
  t->group = *std::move(group);
  const transport::RateLimitGroup* g = t->group.get();
  if (bytes_ != nullptr) {
    // Fails only when another limiter exports this tenant to the registry.
    auto read = bytes_->AddCallback({t->name, "read"}, [g] {
      uint64_t read = 0, written = 0;
      g->Totals(&read, &written);
      return static_cast<double>(read);
    });
    if (read.ok()) t->bytes_read = *std::move(read);
    auto written = bytes_->AddCallback({t->name, "written"}, [g] {
      uint64_t read = 0, written = 0;
      g->Totals(&read, &written);
      return static_cast<double>(written);
    });
    if (written.ok()) t->bytes_written = *std::move(written);
  }
  t->group_ready.store(g, std::memory_order_release);
  return g;
}

absl::Status TenantLimiter::OnCallStart(ServerCallInfo& call,
                                        std::any& state) {
  absl::string_view key;
  if (options_.key_header.empty()) {
    key = call.principal;
    if (key.empty() && call.peer_identity != nullptr) {
      key = call.peer_identity->subject;
    }
  } else if (const std::string* v = call.header(options_.key_header)) {
    key = *v;
  }
  if (key.empty()) key = options_.anonymous_tenant;
  Tenant* t = Find(key);
  if (const transport::RateLimitGroup* group = Group(t);
      group != nullptr && call.context != nullptr) {
    // FAILED_PRECONDITION when the connection is in another tenant's group
    // already: the first one keeps it (see the header).
    call.context->SetConnectionRateLimitGroup(*group).IgnoreError();
  }
  const int max = t->limit.max_concurrent_calls;
  int n = t->in_flight.load(std::memory_order_relaxed);
  do {
    if (max > 0 && n >= max) {
      if (t->concurrency_limited != nullptr) t->concurrency_limited->Increment();
      const int64_t hint_ms = std::max<int64_t>(
          1, t->avg_latency_us.load(std::memory_order_relaxed) / 1000);
      if (call.context != nullptr) {
        call.context->AddTrailer(wire::kRetryPushbackMsKey,
                                 absl::StrCat(hint_ms));
      }
      return absl::ResourceExhaustedError(absl::StrCat(
          "tenant ", t->name, " has ", n, " calls in flight, its limit; "
          "retry after ", hint_ms, "ms"));
    }
  } while (!t->in_flight.compare_exchange_weak(n, n + 1,
                                               std::memory_order_relaxed));
  int64_t wait_ms = 0;
  if (!t->TakeToken(NowNs(), &wait_ms)) {
    t->in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (t->rate_limited != nullptr) t->rate_limited->Increment();
    if (call.context != nullptr) {
      call.context->AddTrailer(wire::kRetryPushbackMsKey,
                               absl::StrCat(wait_ms));
    }
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", t->name, " is over its request rate of ",
        t->limit.requests_per_second, "/s; retry after ", wait_ms, "ms"));
  }
  if (t->admitted != nullptr) t->admitted->Increment();
  if (t->in_flight_gauge != nullptr) t->in_flight_gauge->Increment();
  state = t;
  return absl::OkStatus();
}

void TenantLimiter::OnCallEnd(const ServerCallInfo&, std::any& state,
                              const absl::Status&, absl::Duration latency) {
  Tenant** held = std::any_cast<Tenant*>(&state);
  if (held == nullptr) return;
  Tenant* t = *held;
  t->in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (t->in_flight_gauge != nullptr) t->in_flight_gauge->Decrement();
  // EWMA with weight 1/8; races between loops only blur it.
  const int64_t us = absl::ToInt64Microseconds(latency);
  const int64_t old = t->avg_latency_us.load(std::memory_order_relaxed);
  t->avg_latency_us.store(old == 0 ? us : old + (us - old) / 8,
                          std::memory_order_relaxed);
}

int TenantLimiter::in_flight(absl::string_view tenant) const {
  MutexLock lock(&mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end()
             ? 0
             : it->second->in_flight.load(std::memory_order_relaxed);
}

absl::Status TenantLimiter::ParseInto(absl::string_view contents,
                                      TenantLimitsOptions* options) {
  return internal::ForEachConfigLine(
      contents, [&](int line_no, absl::string_view line) -> absl::Status {
        std::vector<absl::string_view> fields =
            absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
        absl::StatusOr<TenantLimit> limit = ParseLimitFields(line_no, fields);
        if (!limit.ok()) return limit.status();
        if (fields[0] == "*") {
          options->default_limit = *limit;
        } else {
          options->tenants[std::string(fields[0])] = *limit;
        }
        return absl::OkStatus();
      });
}

}  // namespace bevrpc::tenant
