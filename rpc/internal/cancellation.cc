#include "rpc/internal/cancellation.h"

#include <utility>

namespace bevrpc::internal {

absl::Status Cancellation::reason() const {
  MutexLock lock(&mu_);
  return reason_;
}

uint64_t Cancellation::Add(Callback callback) {
  MutexLock lock(&mu_);
  if (!reason_.ok()) return 0;
  const uint64_t id = next_id_++;
  callbacks_.emplace(id, std::move(callback));
  return id;
}

bool Cancellation::Remove(uint64_t id) {
  if (id == 0) return false;
  MutexLock lock(&mu_);
  if (callbacks_.erase(id) == 1) return true;
  while (running_id_ == id && running_thread_ != std::this_thread::get_id()) {
    cv_.Wait(&mu_);
  }
  return false;
}

void Cancellation::Cancel(absl::Status why) {
  if (why.ok()) why = absl::CancelledError("cancelled");
  {
    MutexLock lock(&mu_);
    if (!reason_.ok()) return;
    reason_ = why;
    running_thread_ = std::this_thread::get_id();
  }
  while (true) {
    Callback callback;
    {
      MutexLock lock(&mu_);
      if (running_id_ != 0) {
        running_id_ = 0;
        cv_.SignalAll();
      }
      if (callbacks_.empty()) return;
      auto it = callbacks_.begin();
      running_id_ = it->first;
      callback = std::move(it->second);
      callbacks_.erase(it);
    }
    callback(why);
    // Destroyed before Remove() of this id may return: what it captured is
    // released first.
    callback = nullptr;
  }
}

size_t Cancellation::size() const {
  MutexLock lock(&mu_);
  return callbacks_.size();
}

}  // namespace bevrpc::internal
