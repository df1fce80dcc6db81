#include "rpc/internal/call_trace.h"

#include <utility>

#include "rpc/internal/keepalive.h"

namespace bevrpc::internal {
namespace {

// What a header costs against max_metadata_bytes (metadata_limits.h).
constexpr size_t kEntryOverhead = 32;

int64_t NowNs() { return absl::ToInt64Nanoseconds(MonotonicNow()); }

}  // namespace

trace::TraceContext EnsureTraceparent(Metadata* headers,
                                      const trace::TraceContext& parent,
                                      size_t max_metadata_bytes) {
  // No span to continue and none given: the server starts the trace, and
  // a plain call costs nothing (no header, no allocation).
  if (!parent.valid() && headers->empty()) return trace::TraceContext();
  const std::string key(trace::kTraceparentKey);
  size_t used = 0;
  if (!headers->empty()) {
    auto it = headers->find(key);
    if (it != headers->end()) {
      absl::StatusOr<trace::TraceContext> given =
          trace::TraceContext::Parse(it->second);
      return given.ok() ? *given : trace::TraceContext();
    }
    for (const auto& [k, v] : *headers) used += k.size() + v.size() + kEntryOverhead;
  }
  if (!parent.valid() ||
      used + key.size() + trace::kTraceparentSize + kEntryOverhead >
          max_metadata_bytes) {
    return trace::TraceContext();
  }
  trace::TraceContext span = parent.Child();
  std::string value(trace::kTraceparentSize, '\0');
  span.FormatTo(value.data());
  headers->emplace(key, std::move(value));
  return span;
}

void ServerCallTrace::Begin(trace::RpczStore* store, const Metadata& metadata,
                            absl::Duration arrived,
                            uint64_t request_bytes) {
  parent_ = trace::SpanId{};
  context_ = trace::TraceContext();
  if (!metadata.empty()) {
    auto it = metadata.find(std::string(trace::kTraceparentKey));
    if (it != metadata.end()) {
      absl::StatusOr<trace::TraceContext> caller =
          trace::TraceContext::Parse(it->second);
      if (caller.ok()) {
        parent_ = caller->span_id;
        context_ = caller->Child();
      }
    }
  }
  if (!context_.valid()) context_ = trace::TraceContext::NewRoot();
  store_ = store != nullptr && store->enabled() ? store : nullptr;
  record_ = nullptr;
  ended_ = false;
  if (store_ == nullptr) return;
  arrived_ = arrived;
  request_bytes_ = request_bytes;
  handler_start_ns_.store(0, std::memory_order_relaxed);
  handler_end_ns_.store(0, std::memory_order_relaxed);
  if (store_->ShouldSample()) record_ = store_->NewRecord();
}

void ServerCallTrace::HandlerStarted() {
  if (store_ != nullptr) {
    handler_start_ns_.store(NowNs(), std::memory_order_relaxed);
  }
}

void ServerCallTrace::HandlerEnded() {
  if (store_ != nullptr) {
    handler_end_ns_.store(NowNs(), std::memory_order_relaxed);
  }
}

void ServerCallTrace::End(const absl::Status& status,
                          const std::string& method, const std::string& peer,
                          uint64_t request_bytes, uint64_t response_bytes,
                          absl::Duration now) {
  if (store_ == nullptr || ended_) return;
  ended_ = true;
  trace::RpczStore* store = store_;
  const absl::Duration total = now - arrived_;
  std::shared_ptr<trace::RpczRecord> record = std::move(record_);
  if (record == nullptr) {
    if (!store->ShouldKeep(status.code(), total)) return;
    record = store->NewRecord();
    record->sample().sampled = false;
  }
  trace::RpczSample& s = record->sample();
  s.trace_id = context_.trace_id;
  s.span_id = context_.span_id;
  s.parent_span_id = parent_;
  s.method = method;
  s.peer = peer;
  s.start = absl::Now() - total;
  s.total = total;
  const int64_t started = handler_start_ns_.load(std::memory_order_relaxed);
  const int64_t ended = handler_end_ns_.load(std::memory_order_relaxed);
  if (started == 0) {
    s.queued = total;  // Never ran.
    s.handler = absl::ZeroDuration();
  } else {
    s.queued = absl::Nanoseconds(started) - arrived_;
    s.handler = ended >= started ? absl::Nanoseconds(ended - started)
                                 : absl::InfiniteDuration();
  }
  s.request_bytes = request_bytes;
  s.response_bytes = response_bytes;
  s.code = status.code();
  s.message = trace::TruncateMessage(status.message());
  store->Add(std::move(record));
}

}  // namespace bevrpc::internal
