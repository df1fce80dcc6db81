// EndpointSet: a channel's endpoints and how calls are placed on them.
//
//   resolver (control loop) --full lists--> EndpointSet::Apply
//       -> endpoints added (slots created, connecting lazily), removed
//          (no new calls; their open calls finish, then they close)
//       -> an immutable Snapshot {endpoints, picker} published to every
//          loop (a pointer swap on that loop) and to off-loop callers
//          (under a mutex)
//   CallAsync / stream Open (any thread) --Pick--> a ClientSlot
//
// Each endpoint has ChannelOptions::num_connections slots (one connection
// each, spread over the channel's loops) and an EndpointHealth the slots
// report to and pickers read.
//
// Before the first list arrives, and while the list is empty for a call
// with wait_for_ready, calls are parked on the control loop (bounded by
// max_calls_waiting_for_endpoints, each within its deadline) and placed
// when a list comes. When the resolver fails before any list, parked and
// new calls fail with UNAVAILABLE naming the target and the cause.
//
// Calls that move (retries, failed connects) or were parked are followed
// by ticket so that Channel::Cancel() reaches them wherever they are.
//
// Threading: Pick(), Park(), CancelTicket(), Follow(), CancelFollowed(),
// Start() and Endpoints() are thread-safe. Shutdown() blocks on the loops: never from one of them. Picks on a loop thread take no lock shared with
// other loops and allocate nothing.
#ifndef BEVRPC_RPC_INTERNAL_ENDPOINT_SET_H_
#define BEVRPC_RPC_INTERNAL_ENDPOINT_SET_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "rpc/balancing/endpoint_health.h"
#include "rpc/balancing/outlier_detector.h"
#include "rpc/balancing/picker.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/internal/byte_budget.h"
#include "rpc/internal/client_metrics.h"
#include "rpc/naming/resolver.h"
#include "transport/event_loop.h"
#include "transport/tls.h"
#include "transport/sync.h"

namespace bevrpc::internal {

class ClientSlot;
struct ClientCall;

struct Endpoint {
  naming::EndpointInfo info;  // As first seen; immutable (see snapshots).
  std::shared_ptr<balancing::EndpointHealth> health;
  // Null when outlier detection is off (or under ring_hash_strict).
  std::shared_ptr<balancing::OutlierDetector> outlier;
  std::vector<std::shared_ptr<ClientSlot>> slots;
  // Its series, shared with its slots (null: metrics off).
  std::shared_ptr<EndpointMetrics> metrics;
};

struct EndpointSnapshot {
  // ring_hash_strict: null entries are absent owners (identities that left
  // and are awaited); calls picked for them wait.
  std::vector<std::shared_ptr<Endpoint>> endpoints;
  // Each endpoint's current metadata (weight, zone, ... may change while
  // the endpoint, and its connections, stay).
  std::vector<naming::EndpointInfo> infos;
  std::unique_ptr<const balancing::Picker> picker;
};

class EndpointSet : public std::enable_shared_from_this<EndpointSet> {
 public:
  // `options` and `budget` are the channel's and outlive the set's use of
  // them (until Shutdown()). loops[0] is the control loop (resolver,
  // parked calls).
  EndpointSet(std::string target, std::vector<transport::EventLoop*> loops,
              const ChannelOptions* options, ByteBudget* budget,
              balancing::Policy policy,
              std::shared_ptr<ClientMetrics> metrics = nullptr);
  ~EndpointSet();

  // Starts `resolver` on the control loop (posted; does not wait).
  void Start(std::unique_ptr<naming::Resolver> resolver);
  // Stops the resolver, fails parked calls and shuts every slot down
  // (CANCELLED), each on its loop; blocks until done.
  void Shutdown();

  // A slot for a new call. Null with OK: park the call (Park()); null with
  // an error: fail the call with it.
  std::shared_ptr<ClientSlot> Pick(const CallOptions& options,
                                   absl::Status* error);

  // The hash of the call's CallOptions::hash_key under ring_hash and
  // ring_hash_strict; 0 for other balancers (they ignore it).
  uint64_t KeyHash(const CallOptions& options) const;
  // The same as Pick(), with the key already hashed (KeyHash()).
  std::shared_ptr<ClientSlot> PickHashed(uint64_t hash, bool wait_for_ready,
                                         absl::Status* error);
  // The hot path: on one of the set's loops, the slot straight from that
  // loop's snapshot (no reference taken: valid until this thread returns
  // to its loop); elsewhere a reference goes to `*keep`.
  ClientSlot* PickFast(uint64_t hash, bool wait_for_ready,
                       absl::Status* error, std::shared_ptr<ClientSlot>* keep);

  // Parks a unary or streaming call until endpoints are known (control
  // loop). Returns the ticket for CancelTicket(). Any thread.
  uint64_t Park(std::unique_ptr<ClientCall> call, bool wait_for_ready,
                uint64_t hash);
  // Channel::Cancel() of a call that is not hedged. Any thread.
  void Cancel(const CallHandle& call);
  // Cancels a followed call (parked, waiting to be retried, moved, or
  // placed), wherever it is now; nothing if it is over. Any thread.
  void CancelTicket(uint64_t ticket, absl::Status why);

  // Following calls that move (for Cancel()): a call leaving the slot
  // whose serial and call id its CallHandle names gets a ticket (once)
  // and is found by CancelFollowed() until it ends. Any thread.
  void Follow(ClientCall* call, uint64_t slot_serial, uint64_t call_id);
  void CancelFollowed(uint64_t slot_serial, uint64_t call_id,
                      absl::Status why);

  // For ClientSlot, on its loop: `call` failed with `why` and its retry
  // rule allows another attempt after `delay`: it goes then to an endpoint
  // other than `avoid` if one is usable (else to any), or fails with
  // `why` when the target has none.
  void Retry(std::unique_ptr<ClientCall> call, absl::Status why,
             absl::Duration delay, const balancing::EndpointHealth* avoid);

  transport::EventLoop* control_loop() const { return loops_[0]; }
  const std::string& target() const { return target_; }

  // For ClientSlot: a connection attempt failed (re-resolve soon).
  void OnConnectFailure();
  // For ClientSlot, on its loop: `call` was never written because its
  // connection failed (`why`). It is placed again on a usable endpoint if
  // there is one (at most a few times), else it fails with `why`.
  // `avoid`: an endpoint not to pick again (the one that refused it).
  void Reroute(std::unique_ptr<ClientCall> call, absl::Status why,
               const balancing::EndpointHealth* avoid = nullptr);
  // Hedging: a slot on a usable endpoint not in `avoid` if there is one,
  // else the balancer's pick; null (with *error set, or OK: park) as
  // PickHashed(). Any thread.
  std::shared_ptr<ClientSlot> PickExcept(
      uint64_t hash, const std::vector<const balancing::EndpointHealth*>& avoid,
      absl::Status* error);
  // Control loop only: Shutdown() has begun.
  bool shut_down_on_control_loop() const { return shut_down_; }
  // True if an endpoint other than `avoid` is usable now. Any thread.
  bool AnyUsableBut(const balancing::EndpointHealth* avoid);
  // The first slot of a usable endpoint not in `avoid`, or null.
  std::shared_ptr<ClientSlot> FirstUsableBut(
      const std::vector<const balancing::EndpointHealth*>& avoid);

  // What `bevrpc resolve` and tests see. Any thread.
  struct EndpointStatus {
    naming::EndpointInfo info;
    balancing::EndpointState state;
    uint64_t calls_started = 0;
    int in_flight = 0;
    int ejections = 0;
    absl::Duration ejection_left = absl::ZeroDuration();
  };
  std::vector<EndpointStatus> Endpoints();
  // Waits for the first list or a resolver error: OK, the error, or
  // DEADLINE_EXCEEDED.
  absl::Status WaitResolved(absl::Duration timeout);

 private:
  struct LoopState {
    transport::EventLoop* loop = nullptr;
    std::shared_ptr<const EndpointSnapshot> snapshot;  // Its thread only.
    balancing::PickState pick;
  };
  struct Parked {
    std::unique_ptr<ClientCall> call;
    bool wait_for_ready = false;
    uint64_t hash = 0;
    std::unique_ptr<transport::Timer> timer;
  };

  struct Retrying {
    std::unique_ptr<ClientCall> call;
    absl::Status why;
    const balancing::EndpointHealth* avoid = nullptr;
    std::unique_ptr<transport::Timer> timer;
  };
  // Gives `call` a ticket and the bookkeeping that follows it (once).
  void Track(ClientCall* call);
  // Before `call` starts on `slot` as `call_id`: records where it is. False
  // (with the reason in *why) when it was cancelled on the way.
  bool Placing(ClientCall* call, const std::shared_ptr<ClientSlot>& slot,
               uint64_t call_id, absl::Status* why);
  // Cancelled while parked or in transit: the status to fail it with.
  bool CancelledOnTheWay(const ClientCall* call, absl::Status* why);
  // A pick for a call moving away from `avoid`: another endpoint if the
  // balancer or, failing that, the list has a usable one; else the
  // balancer's pick (possibly `avoid`). Null when the list is empty.
  std::shared_ptr<ClientSlot> PickAvoiding(
      uint64_t hash, const balancing::EndpointHealth* avoid);
  // Starts `call` on `slot` under a new id, unless it was cancelled on the
  // way (then it fails).
  void PlaceOn(const std::shared_ptr<ClientSlot>& slot,
               std::unique_ptr<ClientCall> call);
  // Places a call after its backoff (any loop of the set).
  void PlaceRetry(std::unique_ptr<ClientCall> call, absl::Status why,
                  const balancing::EndpointHealth* avoid);
  void FailRetrying(uint64_t ticket, absl::Status why);

  // Control loop.
  void OnResolved(absl::StatusOr<naming::EndpointList> update);
  void Apply(const naming::EndpointList& list);
  void Publish(std::shared_ptr<const EndpointSnapshot> snapshot);
  void PlaceParked();
  void ParkOnLoop(uint64_t ticket, Parked parked);
  void FailParked(uint64_t ticket, absl::Status why);
  std::shared_ptr<Endpoint> NewEndpoint(const naming::EndpointInfo& info);
  // Hands `call` to `slot` from the control loop.
  void StartOn(const std::shared_ptr<ClientSlot>& slot,
               std::unique_ptr<ClientCall> call);

  // UNAVAILABLE "no endpoints for TARGET: the list is empty".
  absl::Status EmptyListError() const;
  // Off the loops: picks in the shared snapshot, under mu_.
  std::shared_ptr<ClientSlot> PickLocked(uint64_t hash, bool wait_for_ready,
                                         absl::Status* error);
  // Picks in `snapshot` with `state`; null when the snapshot is empty or
  // (`*absent` set) the key's owner is absent (ring_hash_strict). Points
  // into the snapshot.
  const std::shared_ptr<ClientSlot>* PickIn(const EndpointSnapshot& snapshot,
                                     balancing::PickState& state,
                                     uint64_t hash,
                                     transport::EventLoop* here,
                                     bool* absent);
  // ring_hash_strict: identities that left, with when they stop being
  // awaited; rebuilds the picker when the first expires.
  void ArmAbsentTimer();

  const std::string target_;
  // The channel's (null: metrics off); endpoints' series come from it.
  const std::shared_ptr<ClientMetrics> metrics_;
  const std::vector<transport::EventLoop*> loops_;
  const ChannelOptions* const options_;
  // ChannelOptions::tls, loaded once (or why it did not load), and the
  // host name certificates are verified against: the target's host for
  // HOST:PORT and dns:/// targets, else empty (each endpoint's IP).
  std::shared_ptr<const transport::TlsContext> tls_;
  absl::Status tls_error_;
  std::string tls_host_;
  ByteBudget* const budget_;
  const balancing::Policy policy_;
  std::vector<LoopState> loop_states_;

  // Control loop only.
  std::unique_ptr<naming::Resolver> resolver_;
  absl::flat_hash_map<std::string, std::shared_ptr<Endpoint>> by_address_;
  absl::flat_hash_map<uint64_t, Parked> parked_;
  absl::flat_hash_map<uint64_t, Retrying> retrying_;  // In backoff.
  std::deque<uint64_t> parked_order_;
  balancing::PickState control_pick_;
  bool shut_down_ = false;
  const bool strict_;  // ring_hash_strict.
  // The channel's endpoints' share of ejections (null: detection off).
  const std::shared_ptr<balancing::EjectionBudget> ejection_budget_;
  struct Absent {
    absl::Time until;
    uint32_t weight;
  };
  absl::flat_hash_map<std::string, Absent> absent_;  // By identity.
  naming::EndpointList last_list_;
  std::unique_ptr<transport::Timer> absent_timer_;

  Mutex mu_;
  CondVar resolved_cv_;  // resolved_ or resolver_error_ changed.
  std::shared_ptr<const EndpointSnapshot> current_ ABSL_GUARDED_BY(mu_);
  balancing::PickState off_loop_pick_ ABSL_GUARDED_BY(mu_);
  bool resolved_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status resolver_error_ ABSL_GUARDED_BY(mu_);
  // Slots of removed endpoints that may still have calls (shut down with
  // the rest at Shutdown()).
  std::vector<std::weak_ptr<ClientSlot>> retiring_ ABSL_GUARDED_BY(mu_);
  // Followed calls (Track()), by ticket, until they end: the slot they
  // run on (null while parked, in backoff or in transit), and whether
  // Cancel() reached them on the way.
  struct Whereabouts {
    std::weak_ptr<ClientSlot> slot;
    uint64_t call_id = 0;
    bool cancelled = false;
    absl::Status why;
    std::pair<uint64_t, uint64_t> handle{0, 0};  // In handles_, if set.
  };
  absl::flat_hash_map<uint64_t, Whereabouts> followed_ ABSL_GUARDED_BY(mu_);
  // (slot serial, call id) a CallHandle names -> ticket, for calls that
  // moved away from that slot.
  absl::flat_hash_map<std::pair<uint64_t, uint64_t>, uint64_t> handles_
      ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_ticket_{1};
  std::atomic<size_t> parked_count_{0};
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_ENDPOINT_SET_H_
