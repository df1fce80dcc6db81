// Cancellation: the end of an incoming call, as the outgoing calls its
// handler made see it. Many callbacks may be registered and removed; the
// first Cancel() runs the ones still registered, once each. Internal to rpc/
// (users reach it through CallOptions::From(ctx), rpc/call_options.h).
//
//   auto scope = std::make_shared<Cancellation>(deadline);
//   uint64_t id = scope->Add([](const absl::Status& why) { ... });
//   ...
//   scope->Remove(id);                  // the outgoing call ended first
//   scope->Cancel(absl::CancelledError("client cancelled"));  // or this
//
// Bounded: an entry lives from Add() to Remove() or Cancel(), so an incoming
// call that makes thousands of outgoing calls one after another holds only
// the ones still open.
//
// Ownership: shared (std::shared_ptr) by the server call it belongs to and
// by every outgoing call made under it, so either may end first.
//
// Thread-safe. Callbacks run on the thread that calls Cancel(), one after
// the other, without the lock held; they must not block.
#ifndef BEVRPC_RPC_INTERNAL_CANCELLATION_H_
#define BEVRPC_RPC_INTERNAL_CANCELLATION_H_

#include <cstdint>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "transport/sync.h"

namespace bevrpc::internal {

class Cancellation {
 public:
  using Callback = absl::AnyInvocable<void(const absl::Status& why)>;

  // `deadline`: when the incoming call stops waiting (it is cancelled then,
  // by its owner); outgoing calls cap their own deadlines at it.
  explicit Cancellation(absl::Time deadline = absl::InfiniteFuture())
      : deadline_(deadline) {}
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  absl::Time deadline() const { return deadline_; }
  // OK until Cancel(); then the reason it was given.
  absl::Status reason() const;

  // Registers `callback`, run once with the reason if Cancel() comes before
  // Remove(id). Returns its id (never 0); returns 0 and drops `callback`
  // unrun if already cancelled.
  uint64_t Add(Callback callback);
  // Unregisters `id` (0 and unknown ids are ignored). True if it was still
  // waiting, so it will never run. When its callback is running on another
  // thread, waits for it to return: once Remove() returns, the callback no
  // longer runs anywhere (std::stop_callback's rule), so what it uses may be
  // released. From inside the callback itself it does not wait.
  bool Remove(uint64_t id);
  // The first call records `why` (not OK) and runs every registered
  // callback; later calls do nothing.
  void Cancel(absl::Status why);

  // Callbacks registered and not yet run or removed. For tests and
  // diagnostics.
  size_t size() const;

 private:
  const absl::Time deadline_;
  mutable Mutex mu_;
  CondVar cv_;
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // By id: Cancel() takes them in order, and an entry is a node freed on
  // removal, so the map never holds more than the open registrations.
  std::map<uint64_t, Callback> callbacks_ ABSL_GUARDED_BY(mu_);
  // The callback Cancel() is running (0: none), and on which thread.
  uint64_t running_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread::id running_thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_CANCELLATION_H_
