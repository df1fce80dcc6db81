#include "rpc/balancing/picker.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc::balancing {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9u;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebu;
  x ^= x >> 31;
  return x;
}

uint64_t NextRandom(PickState& state) {
  state.rng += 0x9e3779b97f4a7c15u;
  return Mix(state.rng);
}

// Ring entries per unit of weight, and the largest weight the ring honours
// (so one endpoint cannot blow the ring up).
constexpr uint32_t kRingEntriesPerWeight = 1024;
constexpr uint32_t kMaxRingWeight = 16;
// The weighted schedule's length is kept within this by scaling weights.
constexpr uint64_t kMaxSchedule = 4096;

}  // namespace

absl::string_view EndpointStateName(EndpointState state) {
  switch (state) {
    case EndpointState::kIdle:
      return "IDLE";
    case EndpointState::kConnecting:
      return "CONNECTING";
    case EndpointState::kReady:
      return "READY";
    case EndpointState::kTransientFailure:
      return "TRANSIENT_FAILURE";
    case EndpointState::kEjected:
      return "EJECTED";
  }
  return "UNKNOWN";
}

int64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<Policy> ParsePolicy(absl::string_view name) {
  if (name == "pick_first") return Policy::kPickFirst;
  if (name == "round_robin") return Policy::kRoundRobin;
  if (name == "weighted_round_robin") return Policy::kWeightedRoundRobin;
  if (name == "least_loaded") return Policy::kLeastLoaded;
  if (name == "ring_hash") return Policy::kRingHash;
  if (name == "ring_hash_strict") return Policy::kRingHashStrict;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown load balancer \"", name, "\" (known: ", kPolicyNames, ")"));
}

absl::string_view PolicyName(Policy policy) {
  switch (policy) {
    case Policy::kPickFirst:
      return "pick_first";
    case Policy::kRoundRobin:
      return "round_robin";
    case Policy::kWeightedRoundRobin:
      return "weighted_round_robin";
    case Policy::kLeastLoaded:
      return "least_loaded";
    case Policy::kRingHash:
      return "ring_hash";
    case Policy::kRingHashStrict:
      return "ring_hash_strict";
  }
  return "unknown";
}

uint64_t StableHash(absl::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325u;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3u;
  }
  return Mix(h);
}

std::unique_ptr<const Picker> Picker::Build(
    Policy policy, std::vector<PickerEndpoint> endpoints,
    const PickerOptions& options) {
  std::unique_ptr<Picker> p(new Picker());
  p->policy_ = policy;
  p->endpoints_ = std::move(endpoints);
  const size_t n = p->endpoints_.size();
  if (n == 0) return p;
  for (PickerEndpoint& e : p->endpoints_) e.weight = std::max(e.weight, 1u);
  switch (policy) {
    case Policy::kPickFirst:
    case Policy::kRoundRobin:
    case Policy::kLeastLoaded:
      p->order_.resize(n);
      std::iota(p->order_.begin(), p->order_.end(), 0u);
      break;
    case Policy::kWeightedRoundRobin: {
      // Smooth weighted round robin over weights scaled to fit the
      // schedule: each turn, every endpoint gains its weight and the one
      // with the most goes, paying back the total.
      uint64_t total = 0;
      for (const PickerEndpoint& e : p->endpoints_) total += e.weight;
      std::vector<int64_t> weight(n);
      for (size_t i = 0; i < n; ++i) {
        uint64_t w = p->endpoints_[i].weight;
        if (total > kMaxSchedule) w = std::max<uint64_t>(1, w * kMaxSchedule / total);
        weight[i] = static_cast<int64_t>(w);
      }
      int64_t sum = std::accumulate(weight.begin(), weight.end(), int64_t{0});
      std::vector<int64_t> current(n, 0);
      p->order_.reserve(sum);
      for (int64_t turn = 0; turn < sum; ++turn) {
        size_t best = 0;
        for (size_t i = 0; i < n; ++i) {
          current[i] += weight[i];
          if (current[i] > current[best]) best = i;
        }
        current[best] -= sum;
        p->order_.push_back(static_cast<uint32_t>(best));
      }
      break;
    }
    case Policy::kRingHash:
    case Policy::kRingHashStrict: {
      // A fixed number of entries per endpoint (by weight), so adding or
      // removing one endpoint moves only the keys it gains or owned.
      uint64_t total = 0;
      for (const PickerEndpoint& e : p->endpoints_) {
        total += kRingEntriesPerWeight * std::min(e.weight, kMaxRingWeight);
      }
      uint32_t scale = 1;
      while (total * scale < static_cast<uint64_t>(options.min_ring_size)) ++scale;
      p->ring_.reserve(total * scale);
      for (size_t i = 0; i < n; ++i) {
        const PickerEndpoint& e = p->endpoints_[i];
        uint32_t entries =
            kRingEntriesPerWeight * std::min(e.weight, kMaxRingWeight) * scale;
        std::string key = absl::StrCat(e.identity, "#");
        const size_t prefix = key.size();
        for (uint32_t r = 0; r < entries; ++r) {
          key.resize(prefix);
          absl::StrAppend(&key, r);
          p->ring_.push_back({StableHash(key), static_cast<uint32_t>(i)});
        }
      }
      std::sort(p->ring_.begin(), p->ring_.end(),
                [](const RingEntry& a, const RingEntry& b) {
                  return a.hash < b.hash ||
                         (a.hash == b.hash && a.endpoint < b.endpoint);
                });
      break;
    }
  }
  return p;
}


int Picker::Pick(PickState& state, uint64_t hash) const {
  const size_t n = endpoints_.size();
  if (n == 0) return -1;
  if (policy_ == Policy::kRingHashStrict) return PickRing(hash, /*strict=*/true);
  if (n == 1) return 0;
  switch (policy_) {
    case Policy::kPickFirst:
      for (size_t i = 0; i < n; ++i) {
        if (endpoints_[i].health->usable()) return static_cast<int>(i);
      }
      return 0;
    case Policy::kRoundRobin:
    case Policy::kWeightedRoundRobin:
      return PickInTurn(state, order_);
    case Policy::kLeastLoaded:
      return PickLeastLoaded(state);
    case Policy::kRingHash:
      return PickRing(hash, /*strict=*/false);
    case Policy::kRingHashStrict:
      break;
  }
  return 0;
}

int Picker::PickInTurn(PickState& state, const std::vector<uint32_t>& order) const {
  const size_t len = order.size();
  const uint64_t start = state.next++;
  const uint32_t first = order[start % len];
  if (endpoints_[first].health->usable()) return static_cast<int>(first);
  if (policy_ == Policy::kRoundRobin) {
    // Turns over the usable endpoints only, so the ones after a failed
    // endpoint do not get its share too.
    size_t usable = 0;
    for (const PickerEndpoint& e : endpoints_) usable += e.health->usable();
    if (usable == 0) return static_cast<int>(first);
    size_t nth = start % usable;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      if (endpoints_[i].health->usable() && nth-- == 0) {
        return static_cast<int>(i);
      }
    }
  }
  for (size_t k = 1; k < len; ++k) {
    uint32_t i = order[(start + k) % len];
    if (endpoints_[i].health->usable()) return static_cast<int>(i);
  }
  return static_cast<int>(first);  // None usable.
}

int Picker::PickLeastLoaded(PickState& state) const {
  const uint64_t n = endpoints_.size();
  auto score = [&](uint64_t i) {
    const EndpointHealth* h = endpoints_[i].health;
    int64_t latency = std::max<int64_t>(h->latency_ewma_us(), 1);
    return (static_cast<int64_t>(h->in_flight()) + 1) * latency;
  };
  // A few draws of two distinct endpoints; the first pair with a usable
  // member decides.
  for (int attempt = 0; attempt < 4; ++attempt) {
    uint64_t r = NextRandom(state);
    uint64_t a = r % n;
    uint64_t b = (a + 1 + (r >> 32) % (n - 1)) % n;
    bool ua = endpoints_[a].health->usable();
    bool ub = endpoints_[b].health->usable();
    if (ua && ub) return static_cast<int>(score(a) <= score(b) ? a : b);
    if (ua) return static_cast<int>(a);
    if (ub) return static_cast<int>(b);
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (endpoints_[i].health->usable()) return static_cast<int>(i);
  }
  return static_cast<int>(NextRandom(state) % n);
}

int Picker::PickRing(uint64_t hash, bool strict) const {
  auto it = std::lower_bound(
      ring_.begin(), ring_.end(), hash,
      [](const RingEntry& e, uint64_t h) { return e.hash < h; });
  size_t pos = it == ring_.end() ? 0 : static_cast<size_t>(it - ring_.begin());
  const uint32_t owner = ring_[pos].endpoint;
  if (strict || Usable(endpoints_[owner])) return static_cast<int>(owner);
  // Cache semantics: the next usable endpoint clockwise.
  for (size_t k = 1; k < ring_.size(); ++k) {
    uint32_t e = ring_[(pos + k) % ring_.size()].endpoint;
    if (e != owner && Usable(endpoints_[e])) return static_cast<int>(e);
  }
  return static_cast<int>(owner);
}

}  // namespace bevrpc::balancing
