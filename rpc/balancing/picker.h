// Picker: chooses an endpoint for a call, by one load-balancing policy.
// Built once per endpoint list (immutable afterwards) and read on every
// call, on any thread, without locks or allocation; what changes per pick
// (a round-robin position, a random state) lives in a PickState the caller
// owns (one per I/O loop, so loops share nothing per call).
//
//   std::vector<PickerEndpoint> eps = ...;   // health, weight, identity
//   auto picker = Picker::Build(Policy::kRoundRobin, eps, {});
//   PickState state;
//   int i = picker->Pick(state, /*hash=*/0);   // index into eps, -1 if none
//
// Policies (ChannelOptions::load_balancer, CLI --lb):
//   pick_first            the first usable endpoint in the resolver's order
//   round_robin           usable endpoints in turn (the default)
//   weighted_round_robin  in turn, in proportion to each endpoint's weight
//                         (smooth: weights 3,1 give a a b a, not a a a b)
//   least_loaded          power of two choices: of two random usable
//                         endpoints, the one with the lower
//                         (in_flight + 1) x latency EWMA, so a slow or busy
//                         replica gets less
//   ring_hash             consistent hashing of the call's hash key onto a
//                         ring of at least 1024 entries built from each
//                         endpoint's identity (an id in its metadata, else
//                         its address): adding or removing one of N
//                         endpoints moves about 1/N of the keys. A key whose
//                         endpoint is not usable goes to the next usable
//                         endpoint on the ring (cache semantics).
//   ring_hash_strict      the same ring, shard semantics: a key always goes
//                         to its owner, usable or not, and the ring may
//                         hold "absent" owners (PickerEndpoint::health
//                         null: an identity that left and may come back);
//                         Pick() then returns the absent owner's index and
//                         the caller makes the call wait for it.
// "Usable" is EndpointHealth::usable() (neither TRANSIENT_FAILURE nor
// EJECTED); when no endpoint is usable, the policy picks among all of them
// (the call then tries to connect), so ejection never fails a call.
//
// Threading: Build() anywhere; Pick() on any thread with that thread's own
// PickState; the endpoints' health objects must outlive the picker.
#ifndef BEVRPC_RPC_BALANCING_PICKER_H_
#define BEVRPC_RPC_BALANCING_PICKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/balancing/endpoint_health.h"

namespace bevrpc::balancing {

enum class Policy {
  kPickFirst,
  kRoundRobin,
  kWeightedRoundRobin,
  kLeastLoaded,
  kRingHash,
  kRingHashStrict,
};

// "pick_first", "round_robin", ... and back. Unknown names are
// INVALID_ARGUMENT listing the known ones.
absl::StatusOr<Policy> ParsePolicy(absl::string_view name);
absl::string_view PolicyName(Policy policy);
inline constexpr absl::string_view kPolicyNames =
    "pick_first, round_robin, weighted_round_robin, least_loaded, ring_hash, "
    "ring_hash_strict";

// The stable 64-bit hash ring_hash uses for identities and call keys
// (FNV-1a with a final mix; the same in every process and build, so
// clients agree on which endpoint owns a key).
uint64_t StableHash(absl::string_view bytes);

struct PickerEndpoint {
  // Null: an absent owner (ring_hash_strict only).
  const EndpointHealth* health = nullptr;
  uint32_t weight = 1;
  // ring_hash: the endpoint's stable identity.
  std::string identity;
};

struct PickerOptions {
  // ring_hash: entries on the ring, at least. Default 1024.
  int min_ring_size = 1024;
};

// Per-thread mutable pick state; zero-initialised is fine.
struct PickState {
  uint64_t next = 0;  // Round-robin position.
  uint64_t rng = 0x9e3779b97f4a7c15u;
};

class Picker {
 public:
  static std::unique_ptr<const Picker> Build(
      Policy policy, std::vector<PickerEndpoint> endpoints,
      const PickerOptions& options);

  // The index of the chosen endpoint, or -1 when there are none. `hash` is
  // the call's key hash (ring_hash only).
  int Pick(PickState& state, uint64_t hash) const;

  Policy policy() const { return policy_; }
  size_t size() const { return endpoints_.size(); }
  size_t ring_size() const { return ring_.size(); }

 private:
  Picker() = default;
  int PickInTurn(PickState& state, const std::vector<uint32_t>& order) const;
  int PickLeastLoaded(PickState& state) const;
  int PickRing(uint64_t hash, bool strict) const;
  static bool Usable(const PickerEndpoint& e) {
    return e.health != nullptr && e.health->usable();
  }

  Policy policy_ = Policy::kRoundRobin;
  std::vector<PickerEndpoint> endpoints_;
  // round_robin: 0..n-1; weighted: the smooth weighted schedule.
  std::vector<uint32_t> order_;
  struct RingEntry {
    uint64_t hash;
    uint32_t endpoint;
  };
  std::vector<RingEntry> ring_;  // Sorted by hash.
};

}  // namespace bevrpc::balancing

#endif  // BEVRPC_RPC_BALANCING_PICKER_H_
