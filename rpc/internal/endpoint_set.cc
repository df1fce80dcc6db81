#include "rpc/internal/endpoint_set.h"

#include "absl/strings/str_cat.h"
#include "rpc/naming/target.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/internal/client_slot.h"
#include "rpc/internal/client_stream_state.h"
#include "transport/address.h"

namespace bevrpc::internal {

EndpointSet::EndpointSet(std::string target,
                         std::vector<transport::EventLoop*> loops,
                         const ChannelOptions* options, ByteBudget* budget,
                         balancing::Policy policy,
                         std::shared_ptr<ClientMetrics> metrics)
    : target_(std::move(target)),
      metrics_(std::move(metrics)),
      loops_(std::move(loops)),
      options_(options),
      budget_(budget),
      policy_(policy),
      strict_(policy == balancing::Policy::kRingHashStrict),
      ejection_budget_(
          options->outlier_detection.enabled && !strict_
              ? std::make_shared<balancing::EjectionBudget>(
                    options->outlier_detection)
              : nullptr) {
  if (options->tls.enabled()) {
    auto tls = transport::TlsContext::CreateClient(options->tls);
    if (tls.ok()) {
      tls_ = *std::move(tls);
    } else {
      tls_error_ = absl::UnavailableError(
          absl::StrCat("TLS for ", target_, ": ", tls.status().message()));
    }
    absl::StatusOr<naming::Target> t = naming::ParseTarget(target_);
    if (t.ok() && t->endpoints.size() == 1 &&
        (t->scheme == naming::Target::Scheme::kHostPort ||
         t->scheme == naming::Target::Scheme::kDns)) {
      tls_host_ = t->endpoints[0].host;
    }
  }
  loop_states_.resize(loops_.size());
  for (size_t i = 0; i < loops_.size(); ++i) {
    loop_states_[i].loop = loops_[i];
    // Different starting points, so loops do not all begin on endpoint 0.
    loop_states_[i].pick.next = i;
    loop_states_[i].pick.rng += i * 0x632be59bd9b4e019u;
  }
}

EndpointSet::~EndpointSet() = default;

void EndpointSet::Start(std::unique_ptr<naming::Resolver> resolver) {
  // A fixed list is applied now, so that the first calls need not wait for
  // the control loop. Nothing else sees this set yet; the Post below
  // orders these writes before the loop's own use of them.
  if (const naming::EndpointList* list = resolver->fixed_list()) Apply(*list);
  control_loop()->Post([this, self = shared_from_this(),
                        r = std::move(resolver)]() mutable {
    if (shut_down_) return;  // Freed here, on its loop.
    resolver_ = std::move(r);
    resolver_->Start([this](absl::StatusOr<naming::EndpointList> update) {
      OnResolved(std::move(update));
    });
  });
}

void EndpointSet::Shutdown() {
  // The resolver and parked calls, on the control loop.
  Notification stopped;
  control_loop()->Post([this, &stopped] {
    shut_down_ = true;
    resolver_.reset();
    std::vector<uint64_t> tickets(parked_order_.begin(), parked_order_.end());
    for (uint64_t t : tickets) {
      FailParked(t, absl::CancelledError("channel destroyed with the call open"));
    }
    tickets.clear();
    for (const auto& [t, r] : retrying_) tickets.push_back(t);
    for (uint64_t t : tickets) {
      FailRetrying(t, absl::CancelledError("channel destroyed with the call open"));
    }
    stopped.Notify();
  });
  stopped.WaitForNotification();
  // Every slot, current or retiring, on its own loop.
  std::vector<std::shared_ptr<ClientSlot>> slots;
  {
    MutexLock lock(&mu_);
    if (current_ != nullptr) {
      for (const auto& e : current_->endpoints) {
        if (e != nullptr) {
          slots.insert(slots.end(), e->slots.begin(), e->slots.end());
        }
      }
    }
    for (const auto& weak : retiring_) {
      if (std::shared_ptr<ClientSlot> s = weak.lock()) slots.push_back(s);
    }
  }
  for (const std::shared_ptr<ClientSlot>& slot : slots) {
    Notification done;
    slot->loop()->Post([&slot, &done] {
      slot->Shutdown();
      done.Notify();
    });
    done.WaitForNotification();
  }
  // Drop the loops' snapshots on their threads.
  for (LoopState& ls : loop_states_) {
    Notification done;
    ls.loop->Post([&ls, &done] {
      ls.snapshot.reset();
      done.Notify();
    });
    done.WaitForNotification();
  }
  Notification cleared;
  control_loop()->Post([this, &cleared] {
    by_address_.clear();
    absent_timer_.reset();
    cleared.Notify();
  });
  cleared.WaitForNotification();
  MutexLock lock(&mu_);
  current_.reset();
  retiring_.clear();
  followed_.clear();
  handles_.clear();
}

void EndpointSet::OnResolved(absl::StatusOr<naming::EndpointList> update) {
  if (shut_down_) return;
  if (update.ok()) {
    Apply(*update);
    return;
  }
  bool had_list;
  {
    MutexLock lock(&mu_);
    had_list = resolved_;
    resolver_error_ = update.status();
    resolved_cv_.SignalAll();
  }
  if (had_list) return;  // Keep serving the last list.
  // Nothing to place calls on: parked calls fail with the cause.
  absl::Status why = absl::UnavailableError(
      absl::StrCat("no endpoints for ", target_, ": ", update.status().message()));
  std::vector<uint64_t> tickets(parked_order_.begin(), parked_order_.end());
  for (uint64_t t : tickets) FailParked(t, why);
}

std::shared_ptr<Endpoint> EndpointSet::NewEndpoint(
    const naming::EndpointInfo& info) {
  absl::StatusOr<transport::SocketAddress> addr =
      transport::SocketAddress::Parse(info.address);  // Numeric: no DNS.
  if (!addr.ok()) return nullptr;
  auto e = std::make_shared<Endpoint>();
  e->info = info;
  e->health =
      std::make_shared<balancing::EndpointHealth>(options_->num_connections);
  if (ejection_budget_ != nullptr) {
    e->outlier = std::make_shared<balancing::OutlierDetector>(
        options_->outlier_detection, e->health, ejection_budget_);
  }
  if (metrics_ != nullptr) {
    e->metrics = metrics_->ForEndpoint(info.address, e->health);
  }
  const bool track_load = policy_ == balancing::Policy::kLeastLoaded;
  // Spread the endpoint's connections over the loops, starting at a
  // different loop for each endpoint.
  const size_t first = by_address_.size();
  for (int i = 0; i < options_->num_connections; ++i) {
    transport::EventLoop* loop = loops_[(first + i) % loops_.size()];
    e->slots.push_back(std::make_shared<ClientSlot>(
        loop, *addr, options_, budget_, e->health, weak_from_this(),
        track_load, /*hold_calls=*/strict_, e->outlier, e->metrics));
    if (options_->tls.enabled()) e->slots.back()->SetTls(tls_, tls_error_, tls_host_);
  }
  return e;
}

void EndpointSet::Apply(const naming::EndpointList& list) {
  absl::flat_hash_map<std::string, std::shared_ptr<Endpoint>> next;
  auto snapshot = std::make_shared<EndpointSnapshot>();
  std::vector<balancing::PickerEndpoint> pick;
  for (const naming::EndpointInfo& info : list) {
    if (next.contains(info.address)) continue;
    std::shared_ptr<Endpoint> e;
    auto it = by_address_.find(info.address);
    if (it != by_address_.end()) {
      e = it->second;  // Its metadata may have changed: see `infos`.
    } else {
      e = NewEndpoint(info);
      if (e == nullptr) {
        std::fprintf(stderr, "bevrpc: %s: endpoint \"%s\" is not IP:PORT; skipped\n",
                     target_.c_str(), info.address.c_str());
        continue;
      }
    }
    next.emplace(info.address, e);
    snapshot->endpoints.push_back(e);
    snapshot->infos.push_back(info);
    pick.push_back({e->health.get(), info.weight,
                    info.id.empty() ? info.address : info.id});
  }
  if (strict_) {
    // Shard semantics: an identity that leaves keeps its place on the ring
    // for ring_hash_strict_hold, so its keys wait for it instead of moving
    // to a shard that does not have their data.
    const absl::Time now = absl::Now();
    absl::flat_hash_map<std::string, Absent> absent;
    for (const auto& [address, e] : by_address_) {
      if (next.contains(address)) continue;
      std::string identity = e->info.id.empty() ? address : e->info.id;
      absent.emplace(identity, Absent{now + options_->ring_hash_strict_hold,
                                      e->info.weight});
    }
    for (const auto& [identity, a] : absent_) {
      if (a.until > now) absent.emplace(identity, a);
    }
    for (const naming::EndpointInfo& info : list) {
      absent.erase(info.id.empty() ? info.address : info.id);
    }
    absent_ = std::move(absent);
    for (const auto& [identity, a] : absent_) {
      snapshot->endpoints.push_back(nullptr);
      naming::EndpointInfo info;
      info.id = identity;
      snapshot->infos.push_back(info);
      pick.push_back({nullptr, a.weight, identity});
    }
    last_list_ = list;
    ArmAbsentTimer();
  }
  // Removed endpoints: no new calls (not in the snapshot); their open
  // calls finish, then their connections close.
  std::vector<std::shared_ptr<ClientSlot>> removed;
  for (auto& [address, e] : by_address_) {
    if (!next.contains(address)) {
      removed.insert(removed.end(), e->slots.begin(), e->slots.end());
    }
  }
  by_address_ = std::move(next);
  snapshot->picker = balancing::Picker::Build(policy_, std::move(pick), {});
  {
    MutexLock lock(&mu_);
    retiring_.erase(std::remove_if(retiring_.begin(), retiring_.end(),
                                   [](const std::weak_ptr<ClientSlot>& w) {
                                     return w.expired();
                                   }),
                    retiring_.end());
    for (const auto& s : removed) retiring_.push_back(s);
  }
  for (const std::shared_ptr<ClientSlot>& s : removed) {
    s->loop()->Post([s] { s->Retire(); });
  }
  Publish(std::move(snapshot));
  PlaceParked();
}

void EndpointSet::Publish(std::shared_ptr<const EndpointSnapshot> snapshot) {
  {
    MutexLock lock(&mu_);
    current_ = snapshot;
    resolved_ = true;
    resolver_error_ = absl::OkStatus();
    resolved_cv_.SignalAll();
  }
  for (LoopState& ls : loop_states_) {
    if (ls.loop == control_loop()) {
      ls.snapshot = snapshot;
      continue;
    }
    ls.loop->Post([&ls, snapshot, self = shared_from_this()] {
      ls.snapshot = snapshot;
    });
  }
}

void EndpointSet::ArmAbsentTimer() {
  if (absent_.empty()) {
    if (absent_timer_ != nullptr) absent_timer_->Cancel();
    return;
  }
  absl::Time first = absl::InfiniteFuture();
  for (const auto& [identity, a] : absent_) first = std::min(first, a.until);
  if (absent_timer_ == nullptr) {
    absent_timer_ = std::make_unique<transport::Timer>(control_loop());
  }
  // Their keys move on: the same list again, without them.
  absent_timer_->Start(std::max(first - absl::Now(), absl::ZeroDuration()),
                       [this] {
                         if (!shut_down_) Apply(last_list_);
                       });
}

const std::shared_ptr<ClientSlot>* EndpointSet::PickIn(
    const EndpointSnapshot& snapshot, balancing::PickState& state,
    uint64_t hash, transport::EventLoop* here, bool* absent) {
  *absent = false;
  int i = snapshot.picker->Pick(state, hash);
  if (i < 0) return nullptr;
  if (snapshot.endpoints[i] == nullptr) {
    *absent = true;
    return nullptr;
  }
  const Endpoint& e = *snapshot.endpoints[i];
  const size_t n = e.slots.size();
  if (n == 1) return &e.slots[0];
  // Prefer a connection on this loop (the call then starts in this turn);
  // otherwise spread over the endpoint's connections.
  const size_t start = static_cast<size_t>(state.next);
  if (here != nullptr) {
    for (size_t k = 0; k < n; ++k) {
      const auto& s = e.slots[(start + k) % n];
      if (s->loop() == here) return &s;
    }
  }
  return &e.slots[start % n];
}

absl::Status EndpointSet::EmptyListError() const {
  return absl::UnavailableError(
      absl::StrCat("no endpoints for ", target_, ": the list is empty"));
}

uint64_t EndpointSet::KeyHash(const CallOptions& options) const {
  return policy_ == balancing::Policy::kRingHash || strict_
             ? balancing::StableHash(options.hash_key)
             : 0;
}

std::shared_ptr<ClientSlot> EndpointSet::Pick(const CallOptions& options,
                                              absl::Status* error) {
  return PickHashed(KeyHash(options), options.wait_for_ready, error);
}

std::shared_ptr<ClientSlot> EndpointSet::PickHashed(uint64_t hash,
                                                    bool wait_for_ready,
                                                    absl::Status* error) {
  std::shared_ptr<ClientSlot> keep;
  ClientSlot* slot = PickFast(hash, wait_for_ready, error, &keep);
  if (slot == nullptr || keep != nullptr) return keep;
  return slot->shared_from_this();
}

ClientSlot* EndpointSet::PickFast(uint64_t hash, bool wait_for_ready,
                                  absl::Status* error,
                                  std::shared_ptr<ClientSlot>* keep) {
  for (LoopState& ls : loop_states_) {
    if (!ls.loop->IsInLoopThread()) continue;
    if (ls.snapshot == nullptr) break;  // Not resolved yet (or shut down).
    // The loop's snapshot keeps the slot alive until this thread swaps it.
    bool absent;
    const std::shared_ptr<ClientSlot>* slot =
        PickIn(*ls.snapshot, ls.pick, hash, ls.loop, &absent);
    if (slot == nullptr && !wait_for_ready && !absent) {
      *error = EmptyListError();
    }
    return slot == nullptr ? nullptr : slot->get();
  }
  *keep = PickLocked(hash, wait_for_ready, error);
  return keep->get();
}

std::shared_ptr<ClientSlot> EndpointSet::PickLocked(uint64_t hash,
                                                    bool wait_for_ready,
                                                    absl::Status* error) {
  MutexLock lock(&mu_);
  if (current_ == nullptr) {
    if (!resolver_error_.ok()) {
      *error = absl::UnavailableError(absl::StrCat(
          "no endpoints for ", target_, ": ", resolver_error_.message()));
    }
    return nullptr;  // Park until the first list.
  }
  bool absent;
  const std::shared_ptr<ClientSlot>* slot =
      PickIn(*current_, off_loop_pick_, hash, nullptr, &absent);
  if (slot == nullptr && !wait_for_ready && !absent) {
    *error = EmptyListError();
  }
  return slot == nullptr ? nullptr : *slot;
}

uint64_t EndpointSet::Park(std::unique_ptr<ClientCall> call,
                           bool wait_for_ready, uint64_t hash) {
  Track(call.get());
  const uint64_t ticket = call->ticket;
  if (parked_count_.fetch_add(1, std::memory_order_relaxed) >=
      options_->max_calls_waiting_for_endpoints) {
    parked_count_.fetch_sub(1, std::memory_order_relaxed);
    absl::Status why = absl::ResourceExhaustedError(absl::StrCat(
        "no endpoints for ", target_, " yet and ",
        options_->max_calls_waiting_for_endpoints,
        " calls already wait for them (max_calls_waiting_for_endpoints)"));
    control_loop()->Post([call = std::move(call), why]() mutable {
      call->Done(why);
    });
    return ticket;
  }
  Parked parked;
  parked.call = std::move(call);
  parked.wait_for_ready = wait_for_ready;
  parked.hash = hash;
  control_loop()->Post([this, self = shared_from_this(), ticket,
                        parked = std::move(parked)]() mutable {
    ParkOnLoop(ticket, std::move(parked));
  });
  return ticket;
}

void EndpointSet::ParkOnLoop(uint64_t ticket, Parked parked) {
  absl::Status cancelled;
  if (shut_down_ || CancelledOnTheWay(parked.call.get(), &cancelled)) {
    parked_count_.fetch_sub(1, std::memory_order_relaxed);
    if (parked.call->stream != nullptr) parked.call->stream->Unpark(nullptr, 0);
    parked.call->Done(shut_down_ ? absl::CancelledError(
                                       "channel destroyed with the call open")
                                 : std::move(cancelled));
    return;
  }
  ClientCall* call = parked.call.get();
  if (call->deadline != absl::InfiniteFuture()) {
    parked.timer = std::make_unique<transport::Timer>(control_loop());
    parked.timer->Start(call->deadline - absl::Now(), [this, ticket] {
      auto it = parked_.find(ticket);
      if (it == parked_.end()) return;
      absl::Status resolver;
      {
        MutexLock lock(&mu_);
        resolver = resolver_error_;
      }
      FailParked(ticket, absl::DeadlineExceededError(absl::StrCat(
                             "deadline of ",
                             absl::FormatDuration(it->second.call->timeout),
                             " exceeded waiting for endpoints of ", target_,
                             resolver.ok() ? "" : ": ", resolver.message())));
    });
  }
  parked_.emplace(ticket, std::move(parked));
  parked_order_.push_back(ticket);
  absl::Status resolver;
  {
    MutexLock lock(&mu_);
    resolver = resolver_error_;
  }
  if (!resolver.ok() && by_address_.empty()) {
    FailParked(ticket, absl::UnavailableError(absl::StrCat(
                           "no endpoints for ", target_, ": ",
                           resolver.message())));
    return;
  }
  PlaceParked();
}

void EndpointSet::FailParked(uint64_t ticket, absl::Status why) {
  auto it = parked_.find(ticket);
  if (it == parked_.end()) return;
  Parked parked = std::move(it->second);
  parked_.erase(it);
  parked_order_.erase(
      std::find(parked_order_.begin(), parked_order_.end(), ticket));
  parked_count_.fetch_sub(1, std::memory_order_relaxed);
  if (parked.call->stream != nullptr) parked.call->stream->Unpark(nullptr, 0);
  parked.call->Done(std::move(why));
}

void EndpointSet::PlaceParked() {
  std::shared_ptr<const EndpointSnapshot> snapshot;
  for (LoopState& ls : loop_states_) {
    if (ls.loop == control_loop()) snapshot = ls.snapshot;
  }
  if (snapshot == nullptr) return;
  std::deque<uint64_t> still;
  while (!parked_order_.empty()) {
    uint64_t ticket = parked_order_.front();
    parked_order_.pop_front();
    auto it = parked_.find(ticket);
    if (it == parked_.end()) continue;
    bool absent;
    const std::shared_ptr<ClientSlot>* picked = PickIn(
        *snapshot, control_pick_, it->second.hash, control_loop(), &absent);
    std::shared_ptr<ClientSlot> slot =
        picked == nullptr ? nullptr : *picked;
    if (slot == nullptr) {
      if (it->second.wait_for_ready || absent) {
        still.push_back(ticket);
      } else {
        Parked parked = std::move(it->second);
        parked_.erase(it);
        parked_count_.fetch_sub(1, std::memory_order_relaxed);
        if (parked.call->stream != nullptr) parked.call->stream->Unpark(nullptr, 0);
        parked.call->Done(EmptyListError());
      }
      continue;
    }
    Parked parked = std::move(it->second);
    parked_.erase(it);
    parked_count_.fetch_sub(1, std::memory_order_relaxed);
    std::unique_ptr<ClientCall> call = std::move(parked.call);
    const uint64_t id = slot->NextCallId();
    std::shared_ptr<ClientStreamState> stream = call->stream;
    absl::Status cancelled;
    if (!Placing(call.get(), slot, id, &cancelled)) {
      if (stream != nullptr) stream->Unpark(nullptr, 0);
      call->Done(std::move(cancelled));
      continue;
    }
    call->id = id;
    StartOn(slot, std::move(call));
    // A stream's operations queued while it was parked follow its start.
    if (stream != nullptr) stream->Unpark(slot, id);
  }
  parked_order_ = std::move(still);
}

void EndpointSet::StartOn(const std::shared_ptr<ClientSlot>& slot,
                          std::unique_ptr<ClientCall> call) {
  if (slot->loop()->IsInLoopThread()) {
    slot->Start(std::move(call));
  } else {
    slot->PostStart(std::move(call), absl::OkStatus());
  }
}

void EndpointSet::Cancel(const CallHandle& call) {
  absl::Status why = absl::CancelledError("call cancelled by the client");
  if (call.ticket != 0) {
    CancelTicket(call.ticket, std::move(why));
    return;
  }
  std::shared_ptr<ClientSlot> slot = call.slot.lock();
  if (slot == nullptr) return;
  const uint64_t id = call.call_id;
  slot->loop()->Post([slot, id] { slot->Cancel(id); });
}

void EndpointSet::Track(ClientCall* call) {
  if (call->ticket != 0) return;
  const uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  call->ticket = ticket;
  {
    MutexLock lock(&mu_);
    followed_[ticket];
  }
  // Allocates: only calls that park or move pay for it.
  call->done = [this, self = shared_from_this(), ticket,
                done = std::move(call->done)](absl::Status s) mutable {
    {
      MutexLock lock(&mu_);
      auto it = followed_.find(ticket);
      if (it != followed_.end()) {
        if (it->second.handle.first != 0) handles_.erase(it->second.handle);
        followed_.erase(it);
      }
    }
    done(std::move(s));
  };
}

void EndpointSet::Follow(ClientCall* call, uint64_t slot_serial,
                         uint64_t call_id) {
  Track(call);
  MutexLock lock(&mu_);
  auto it = followed_.find(call->ticket);
  if (it == followed_.end()) return;
  it->second.slot.reset();  // In transit.
  if (it->second.handle.first == 0) {
    it->second.handle = {slot_serial, call_id};
    handles_[it->second.handle] = call->ticket;
  }
}

void EndpointSet::CancelFollowed(uint64_t slot_serial, uint64_t call_id,
                                 absl::Status why) {
  uint64_t ticket;
  {
    MutexLock lock(&mu_);
    auto it = handles_.find({slot_serial, call_id});
    if (it == handles_.end()) return;  // Over.
    ticket = it->second;
  }
  CancelTicket(ticket, std::move(why));
}

bool EndpointSet::Placing(ClientCall* call,
                          const std::shared_ptr<ClientSlot>& slot,
                          uint64_t call_id, absl::Status* why) {
  if (call->ticket == 0) return true;
  MutexLock lock(&mu_);
  auto it = followed_.find(call->ticket);
  if (it == followed_.end()) return true;
  if (it->second.cancelled) {
    *why = absl::Status(it->second.why.code(), it->second.why.message());
    return false;
  }
  it->second.slot = slot;
  it->second.call_id = call_id;
  return true;
}

bool EndpointSet::CancelledOnTheWay(const ClientCall* call,
                                    absl::Status* why) {
  if (call->ticket == 0) return false;
  MutexLock lock(&mu_);
  auto it = followed_.find(call->ticket);
  if (it == followed_.end() || !it->second.cancelled) return false;
  *why = absl::Status(it->second.why.code(), it->second.why.message());
  return true;
}

void EndpointSet::CancelTicket(uint64_t ticket, absl::Status why) {
  std::shared_ptr<ClientSlot> slot;
  uint64_t id = 0;
  {
    MutexLock lock(&mu_);
    auto it = followed_.find(ticket);
    if (it == followed_.end() || it->second.cancelled) return;
    it->second.cancelled = true;
    it->second.why = absl::Status(why.code(), why.message());
    slot = it->second.slot.lock();
    id = it->second.call_id;
  }
  if (slot != nullptr) {
    // Posted after the call's start on that loop (Placing() came first).
    slot->loop()->Post([slot, id] { slot->Cancel(id); });
    return;
  }
  // Parked, in backoff, or on its way to one of them or to a slot (which
  // then sees `cancelled`).
  control_loop()->Post([this, self = shared_from_this(), ticket,
                        why = std::move(why)]() mutable {
    if (parked_.contains(ticket)) {
      FailParked(ticket, std::move(why));
    } else if (retrying_.contains(ticket)) {
      FailRetrying(ticket, std::move(why));
    }
  });
}

std::shared_ptr<ClientSlot> EndpointSet::FirstUsableBut(
    const std::vector<const balancing::EndpointHealth*>& avoid) {
  std::shared_ptr<const EndpointSnapshot> snapshot;
  {
    MutexLock lock(&mu_);
    snapshot = current_;
  }
  if (snapshot == nullptr) return nullptr;
  for (const auto& e : snapshot->endpoints) {
    if (e != nullptr && e->health->usable() &&
        std::find(avoid.begin(), avoid.end(), e->health.get()) ==
            avoid.end()) {
      return e->slots.front();
    }
  }
  return nullptr;
}

bool EndpointSet::AnyUsableBut(const balancing::EndpointHealth* avoid) {
  return FirstUsableBut({avoid}) != nullptr;
}

void EndpointSet::Reroute(std::unique_ptr<ClientCall> call, absl::Status why,
                          const balancing::EndpointHealth* avoid) {
  constexpr int kMaxReroutes = 4;
  if (strict_ && !shut_down_) {
    // Shard semantics: the key's owner, whatever its state, or a wait for
    // it to come back.
    absl::Status error;
    const uint64_t hash = call->hash;
    std::shared_ptr<ClientSlot> slot =
        PickHashed(hash, /*wait_for_ready=*/false, &error);
    if (slot != nullptr) {
      PlaceOn(slot, std::move(call));
    } else if (error.ok()) {
      Park(std::move(call), /*wait_for_ready=*/false, hash);
    } else {
      call->Done(std::move(error));
    }
    return;
  }
  std::shared_ptr<ClientSlot> slot;
  if (!shut_down_ && call->reroutes < kMaxReroutes) {
    slot = PickAvoiding(call->hash, avoid);
  }
  // Only a usable endpoint helps; with none, the first error stands.
  const bool usable = slot != nullptr && slot->health() != avoid &&
                      slot->health()->usable();
  if (!usable) {
    call->Done(std::move(why));
    return;
  }
  ++call->reroutes;
  PlaceOn(slot, std::move(call));
}

void EndpointSet::PlaceOn(const std::shared_ptr<ClientSlot>& slot,
                          std::unique_ptr<ClientCall> call) {
  const uint64_t id = slot->NextCallId();
  absl::Status cancelled;
  if (!Placing(call.get(), slot, id, &cancelled)) {
    call->Done(std::move(cancelled));
    return;
  }
  call->id = id;
  StartOn(slot, std::move(call));
}

std::shared_ptr<ClientSlot> EndpointSet::PickAvoiding(
    uint64_t hash, const balancing::EndpointHealth* avoid) {
  absl::Status unused;
  return PickExcept(hash, {avoid}, &unused);
}

std::shared_ptr<ClientSlot> EndpointSet::PickExcept(
    uint64_t hash, const std::vector<const balancing::EndpointHealth*>& avoid,
    absl::Status* error) {
  std::shared_ptr<ClientSlot> slot;
  for (int i = 0; i < 4; ++i) {
    slot = PickHashed(hash, /*wait_for_ready=*/false, error);
    if (slot == nullptr || std::find(avoid.begin(), avoid.end(),
                                     slot->health()) == avoid.end()) {
      return slot;
    }
  }
  // The balancer insists (pick_first, ring_hash): the first other usable
  // endpoint, if any.
  std::shared_ptr<ClientSlot> other = FirstUsableBut(avoid);
  return other != nullptr ? other : slot;
}

void EndpointSet::Retry(std::unique_ptr<ClientCall> call, absl::Status why,
                        absl::Duration delay,
                        const balancing::EndpointHealth* avoid) {
  // The backoff runs on the control loop, where CancelTicket() finds it.
  Retrying r;
  r.call = std::move(call);
  r.why = std::move(why);
  r.avoid = avoid;
  control_loop()->Post([this, self = shared_from_this(), delay,
                        r = std::move(r)]() mutable {
    absl::Status cancelled;
    if (shut_down_ || CancelledOnTheWay(r.call.get(), &cancelled)) {
      r.call->Done(shut_down_ ? absl::CancelledError(
                                    "channel destroyed with the call open")
                              : std::move(cancelled));
      return;
    }
    if (delay <= absl::ZeroDuration()) {
      PlaceRetry(std::move(r.call), std::move(r.why), r.avoid);
      return;
    }
    const uint64_t ticket = r.call->ticket;
    r.timer = std::make_unique<transport::Timer>(control_loop());
    r.timer->Start(delay, [this, ticket] {
      auto it = retrying_.find(ticket);
      if (it == retrying_.end()) return;
      Retrying ready = std::move(it->second);
      retrying_.erase(it);
      PlaceRetry(std::move(ready.call), std::move(ready.why), ready.avoid);
    });
    retrying_.emplace(ticket, std::move(r));
  });
}

void EndpointSet::PlaceRetry(std::unique_ptr<ClientCall> call,
                             absl::Status why,
                             const balancing::EndpointHealth* avoid) {
  absl::Status error;
  std::shared_ptr<ClientSlot> slot =
      strict_ ? PickHashed(call->hash, /*wait_for_ready=*/false, &error)
              : PickAvoiding(call->hash, avoid);
  if (slot == nullptr) {
    call->Done(std::move(why));  // No endpoints now: the last failure.
    return;
  }
  PlaceOn(slot, std::move(call));
}

void EndpointSet::FailRetrying(uint64_t ticket, absl::Status why) {
  auto it = retrying_.find(ticket);
  if (it == retrying_.end()) return;
  Retrying r = std::move(it->second);
  retrying_.erase(it);
  r.call->Done(std::move(why));
}

void EndpointSet::OnConnectFailure() {
  control_loop()->Post([self = shared_from_this()] {
    if (!self->shut_down_ && self->resolver_ != nullptr) {
      self->resolver_->RequestRefresh();
    }
  });
}

std::vector<EndpointSet::EndpointStatus> EndpointSet::Endpoints() {
  std::shared_ptr<const EndpointSnapshot> snapshot;
  {
    MutexLock lock(&mu_);
    snapshot = current_;
  }
  std::vector<EndpointStatus> out;
  if (snapshot == nullptr) return out;
  for (size_t i = 0; i < snapshot->endpoints.size(); ++i) {
    const auto& e = snapshot->endpoints[i];
    if (e == nullptr) continue;  // An absent owner (ring_hash_strict).
    EndpointStatus st;
    st.info = snapshot->infos[i];
    st.state = e->health->state();
    st.in_flight = e->health->in_flight();
    if (e->outlier != nullptr) {
      st.ejections = e->outlier->ejections();
      st.ejection_left = e->outlier->ejection_left();
    }
    for (const auto& s : e->slots) st.calls_started += s->calls_started();
    out.push_back(std::move(st));
  }
  return out;
}

absl::Status EndpointSet::WaitResolved(absl::Duration timeout) {
  MutexLock lock(&mu_);
  resolved_cv_.WaitUntil(&mu_, timeout, [&] {
    return resolved_ || !resolver_error_.ok();
  });
  if (resolved_) return absl::OkStatus();
  if (!resolver_error_.ok()) return resolver_error_;
  return absl::DeadlineExceededError(absl::StrCat(
      "no endpoint list for ", target_, " within ",
      absl::FormatDuration(timeout)));
}

}  // namespace bevrpc::internal
