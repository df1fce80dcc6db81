#include "rpc/trace/rpcz_store.h"

#include <utility>

namespace bevrpc::trace {

void RpczRecord::AddDownstream(RpczDownstreamCall call) {
  MutexLock lock(&mu_);
  if (downstream_.size() >= max_downstream_) {
    ++dropped_;
    return;
  }
  downstream_.push_back(std::move(call));
}

RpczSample RpczRecord::Snapshot() const {
  RpczSample copy = sample_;
  MutexLock lock(&mu_);
  copy.downstream = downstream_;
  copy.downstream_dropped = dropped_;
  return copy;
}

RpczStore::RpczStore(RpczOptions options) : options_(std::move(options)) {}

bool RpczStore::ShouldSample() const {
  if (!enabled() || options_.sample_one_in == 0) return false;
  if (options_.sample_one_in == 1) return true;
  // Starts at a random point so that threads do not sample in step.
  thread_local uint32_t countdown =
      static_cast<uint32_t>(RandomU64() % options_.sample_one_in);
  if (countdown == 0) {
    countdown = options_.sample_one_in - 1;
    return true;
  }
  --countdown;
  return false;
}

void RpczStore::Add(std::shared_ptr<RpczRecord> record) {
  if (!enabled()) return;
  std::shared_ptr<RpczRecord> evicted;  // Freed outside the lock.
  MutexLock lock(&mu_);
  if (ring_.size() < options_.max_samples) {
    ring_.push_back(std::move(record));
  } else {
    std::shared_ptr<RpczRecord>& slot = ring_[next_ % options_.max_samples];
    evicted = std::move(slot);
    slot = std::move(record);
  }
  ++next_;
}

std::vector<RpczSample> RpczStore::Snapshot(const TraceId* trace_id) const {
  std::vector<std::shared_ptr<RpczRecord>> held;
  {
    MutexLock lock(&mu_);
    held.reserve(ring_.size());
    // Newest first: the slot before next_, backwards.
    for (size_t i = 1; i <= ring_.size(); ++i) {
      held.push_back(ring_[(next_ - i) % ring_.size()]);
    }
  }
  // Copied outside the store's lock: the I/O threads adding calls wait
  // only for the pointer copies above.
  std::vector<RpczSample> out;
  out.reserve(held.size());
  for (const std::shared_ptr<RpczRecord>& record : held) {
    RpczSample sample = record->Snapshot();
    if (trace_id != nullptr && sample.trace_id != *trace_id) continue;
    out.push_back(std::move(sample));
  }
  return out;
}

uint64_t RpczStore::recorded() const {
  MutexLock lock(&mu_);
  return next_;
}

size_t RpczStore::size() const {
  MutexLock lock(&mu_);
  return ring_.size();
}

std::string TruncateMessage(absl::string_view message) {
  if (message.size() <= kMaxMessageBytes) return std::string(message);
  size_t end = kMaxMessageBytes;
  // Back off continuation bytes (10xxxxxx) to end on a character boundary.
  while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) {
    --end;
  }
  return std::string(message.substr(0, end));
}

}  // namespace bevrpc::trace
