// RpczStore: the last sampled server calls of one server, for the /rpcz
// page (rpc/trace/rpcz_page.h): their trace ids, timings, sizes, status,
// and the outgoing calls their handlers made.
//
//   RpczStore store(options.rpcz);
//   // A call arrives (its I/O thread):
//   std::shared_ptr<RpczRecord> record;
//   if (store.ShouldSample()) record = store.NewRecord();
//   // ... its handler's outgoing calls: record->AddDownstream(...) ...
//   // It ends: fill record->sample() and
//   store.Add(std::move(record));
//   // The page:
//   for (const RpczSample& s : store.Snapshot()) ...
//
// Bounded: at most RpczOptions::max_samples records (the oldest goes when a
// new one comes), each with at most max_downstream_calls outgoing calls
// (later ones are counted, not kept) and status messages cut at
// kMaxMessageBytes.
//
// Thread-safe. Calls end on I/O threads; outgoing calls end on any thread,
// also after their server call was stored.
#ifndef BEVRPC_RPC_TRACE_RPCZ_STORE_H_
#define BEVRPC_RPC_TRACE_RPCZ_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rpc/trace/trace_context.h"
#include "transport/sync.h"

namespace bevrpc::trace {

// ServerOptions::rpcz.
struct RpczOptions {
  // Record calls at all. Off costs nothing per call. Default: true.
  bool enabled = true;
  // Sample one call in this many (counted per I/O thread); 1 samples every
  // call, 0 none (then only the calls kept below). Only sampled calls list
  // their outgoing calls. A followed call costs two allocations; at the
  // default that is ~0.002 per call, within the fast path's allocation
  // budget (tests/e2e/allocation_test.cc). Default: 1024.
  uint32_t sample_one_in = 1024;
  // Calls kept: the most recent this many. Default: 1024.
  size_t max_samples = 1024;
  // Also keep every call that fails (any code but OK), sampled or not.
  // Default: true.
  bool keep_failed = true;
  // Also keep every call that takes at least this long (from its request
  // arriving to its end); absl::InfiniteDuration() turns it off.
  // Default: 100 ms.
  absl::Duration keep_slower_than = absl::Milliseconds(100);
  // Outgoing calls listed per call; later ones are only counted.
  // Default: 32.
  size_t max_downstream_calls = 32;
};

// One outgoing call a handler made (CallOptions::From(ctx)).
struct RpczDownstreamCall {
  std::string method;  // "package.Service/Method"
  std::string target;  // The Channel's target, e.g. "list:///a:1,b:2"
  SpanId span_id{};    // The span its traceparent named: the callee's parent.
  absl::Time start;
  absl::Duration duration;
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;  // At most kMaxMessageBytes.
};

// One server call, as stored.
struct RpczSample {
  TraceId trace_id{};
  SpanId span_id{};         // The call's own span (ServerContext::trace()).
  SpanId parent_span_id{};  // The caller's span; all zero for a new trace.
  std::string method;       // "package.Service/Method"
  std::string peer;         // "127.0.0.1:53122"
  absl::Time start;         // When its request arrived.
  // Request arrival to handler start; handler start to its Completion
  // (absl::InfiniteDuration() if it had not finished when the call ended);
  // arrival to end. Zero for a handler that never started.
  absl::Duration queued;
  absl::Duration handler;
  absl::Duration total;
  uint64_t request_bytes = 0;   // Payload bytes (a stream's: all messages).
  uint64_t response_bytes = 0;  // Unary responses only.
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;  // At most kMaxMessageBytes.
  // False for a call kept only because it failed or was slow (its outgoing
  // calls are not listed: it was not followed from the start).
  bool sampled = true;
  std::vector<RpczDownstreamCall> downstream;
  uint64_t downstream_dropped = 0;  // Over max_downstream_calls.
};

// Status messages are cut to this many bytes.
inline constexpr size_t kMaxMessageBytes = 256;

// A call being recorded. Its owner fills sample() before RpczStore::Add();
// AddDownstream() may come from any thread at any time.
class RpczRecord {
 public:
  explicit RpczRecord(size_t max_downstream) : max_downstream_(max_downstream) {}
  RpczRecord(const RpczRecord&) = delete;
  RpczRecord& operator=(const RpczRecord&) = delete;

  // Everything but the outgoing calls; the owner's, until Add().
  RpczSample& sample() { return sample_; }

  // Thread-safe. Over the bound: counted in downstream_dropped.
  void AddDownstream(RpczDownstreamCall call);

  // A copy, with the outgoing calls so far. Thread-safe once stored.
  RpczSample Snapshot() const;

 private:
  const size_t max_downstream_;
  RpczSample sample_;  // Without downstream fields, which live below.
  mutable Mutex mu_;
  std::vector<RpczDownstreamCall> downstream_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

class RpczStore {
 public:
  explicit RpczStore(RpczOptions options = {});
  RpczStore(const RpczStore&) = delete;
  RpczStore& operator=(const RpczStore&) = delete;

  const RpczOptions& options() const { return options_; }
  bool enabled() const { return options_.enabled && options_.max_samples > 0; }

  // Whether to follow a call that is starting: true for one call in
  // sample_one_in on this thread. No lock, no allocation.
  bool ShouldSample() const;
  // Whether an unsampled call that ended with `code` after `total` is kept.
  bool ShouldKeep(absl::StatusCode code, absl::Duration total) const {
    return (options_.keep_failed && code != absl::StatusCode::kOk) ||
           total >= options_.keep_slower_than;
  }
  std::shared_ptr<RpczRecord> NewRecord() const {
    return std::make_shared<RpczRecord>(options_.max_downstream_calls);
  }

  // Stores a finished call; at max_samples the oldest is dropped.
  void Add(std::shared_ptr<RpczRecord> record);

  // The stored calls, newest first; with `trace_id`, only that trace's.
  std::vector<RpczSample> Snapshot(const TraceId* trace_id = nullptr) const;

  // Calls stored since the start (including those dropped since).
  uint64_t recorded() const;
  // Calls held now (at most max_samples).
  size_t size() const;

 private:
  const RpczOptions options_;
  mutable Mutex mu_;
  // A ring: ring_[next_ % max_samples] is the next slot to fill.
  std::vector<std::shared_ptr<RpczRecord>> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

// Cuts `message` to kMaxMessageBytes (on a UTF-8 boundary).
std::string TruncateMessage(absl::string_view message);

}  // namespace bevrpc::trace

#endif  // BEVRPC_RPC_TRACE_RPCZ_STORE_H_
