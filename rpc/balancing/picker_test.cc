#include "rpc/balancing/picker.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bevrpc::balancing {
namespace {

// Endpoints whose health the test sets.
struct Fleet {
  explicit Fleet(int n) {
    for (int i = 0; i < n; ++i) {
      health.push_back(std::make_unique<EndpointHealth>(1));
    }
  }
  std::vector<PickerEndpoint> Endpoints(std::vector<uint32_t> weights = {}) {
    std::vector<PickerEndpoint> out;
    for (size_t i = 0; i < health.size(); ++i) {
      out.push_back({health[i].get(),
                     weights.empty() ? 1u : weights[i],
                     absl::StrCat("10.0.0.", i, ":80")});
    }
    return out;
  }
  void Fail(int i) { health[i]->AddFailing(1); }
  std::vector<std::unique_ptr<EndpointHealth>> health;
};

std::map<int, int> Count(const Picker& p, int picks, uint64_t hash = 0) {
  PickState state;
  std::map<int, int> count;
  for (int i = 0; i < picks; ++i) ++count[p.Pick(state, hash)];
  return count;
}

TEST(PickerTest, EmptyPicksNothing) {
  auto p = Picker::Build(Policy::kRoundRobin, {}, {});
  PickState state;
  EXPECT_EQ(p->Pick(state, 0), -1);
}

TEST(PickerTest, RoundRobinIsExactlyEven) {
  Fleet fleet(3);
  auto p = Picker::Build(Policy::kRoundRobin, fleet.Endpoints(), {});
  EXPECT_EQ(Count(*p, 300), (std::map<int, int>{{0, 100}, {1, 100}, {2, 100}}));
}

TEST(PickerTest, RoundRobinSkipsFailedEndpoints) {
  Fleet fleet(3);
  fleet.Fail(1);
  auto p = Picker::Build(Policy::kRoundRobin, fleet.Endpoints(), {});
  // The failed endpoint's turns are shared, not all given to its
  // successor.
  EXPECT_EQ(Count(*p, 300), (std::map<int, int>{{0, 150}, {2, 150}}));
}

TEST(PickerTest, EjectedEndpointsAreSkippedLikeFailedOnes) {
  Fleet fleet(3);
  for (auto& h : fleet.health) h->AddReady(1);
  // Ejected for an hour from now (a READY connection does not matter).
  fleet.health[1]->set_ejected_until(MonotonicNanos() + 3600'000'000'000);
  EXPECT_EQ(fleet.health[1]->state(), EndpointState::kEjected);
  EXPECT_EQ(EndpointStateName(fleet.health[1]->state()), "EJECTED");
  for (Policy policy : {Policy::kRoundRobin, Policy::kPickFirst,
                        Policy::kLeastLoaded, Policy::kRingHash}) {
    auto p = Picker::Build(policy, fleet.Endpoints(), {});
    std::map<int, int> count = Count(*p, 300, /*hash=*/12345);
    EXPECT_EQ(count.count(1), 0u) << PolicyName(policy);
  }
  // Every endpoint ejected or failing: calls still go somewhere.
  fleet.health[0]->set_ejected_until(MonotonicNanos() + 3600'000'000'000);
  fleet.health[2]->AddReady(-1);
  fleet.Fail(2);
  auto p = Picker::Build(Policy::kRoundRobin, fleet.Endpoints(), {});
  EXPECT_EQ(Count(*p, 300), (std::map<int, int>{{0, 100}, {1, 100}, {2, 100}}));
  // Its time over (and the probation mark still set), it is usable again.
  fleet.health[1]->set_ejected_until(MonotonicNanos() - 1);
  EXPECT_EQ(fleet.health[1]->state(), EndpointState::kReady);
}

TEST(PickerTest, WhenNothingIsUsableEveryEndpointStillGetsCalls) {
  Fleet fleet(2);
  fleet.Fail(0);
  fleet.Fail(1);
  auto p = Picker::Build(Policy::kRoundRobin, fleet.Endpoints(), {});
  EXPECT_EQ(Count(*p, 10), (std::map<int, int>{{0, 5}, {1, 5}}));
}

TEST(PickerTest, PickFirstSticksToTheFirstUsable) {
  Fleet fleet(3);
  auto p = Picker::Build(Policy::kPickFirst, fleet.Endpoints(), {});
  EXPECT_EQ(Count(*p, 50), (std::map<int, int>{{0, 50}}));
  fleet.Fail(0);
  EXPECT_EQ(Count(*p, 50), (std::map<int, int>{{1, 50}}));
}

TEST(PickerTest, WeightedRoundRobinIsProportionalAndSmooth) {
  Fleet fleet(2);
  auto p = Picker::Build(Policy::kWeightedRoundRobin, fleet.Endpoints({3, 1}),
                         {});
  EXPECT_EQ(Count(*p, 400), (std::map<int, int>{{0, 300}, {1, 100}}));
  // Smooth: never the light endpoint twice in a row, and the heavy one at
  // most 3 times in a row.
  PickState state;
  int run = 0;
  int last = -1;
  for (int i = 0; i < 40; ++i) {
    int e = p->Pick(state, 0);
    run = e == last ? run + 1 : 1;
    last = e;
    EXPECT_LE(run, e == 0 ? 3 : 1);
  }
}

TEST(PickerTest, WeightedScheduleStaysBoundedWithHugeWeights) {
  Fleet fleet(2);
  auto p = Picker::Build(Policy::kWeightedRoundRobin,
                         fleet.Endpoints({1000000, 1000000}), {});
  EXPECT_EQ(Count(*p, 1000), (std::map<int, int>{{0, 500}, {1, 500}}));
}

TEST(PickerTest, LeastLoadedSteersAwayFromASlowEndpoint) {
  Fleet fleet(3);
  for (int i = 0; i < 3; ++i) fleet.health[i]->CallStarted();
  fleet.health[0]->CallEnded(10000);  // 10 ms
  fleet.health[1]->CallEnded(100);
  fleet.health[2]->CallEnded(100);
  auto p = Picker::Build(Policy::kLeastLoaded, fleet.Endpoints(), {});
  std::map<int, int> count = Count(*p, 3000);
  // Endpoint 0 wins only a draw against itself, which never happens: its
  // score is 100x the others'.
  EXPECT_EQ(count[0], 0);
  EXPECT_EQ(count[1] + count[2], 3000);
  EXPECT_GT(count[1], 1000);
  EXPECT_GT(count[2], 1000);
}

TEST(PickerTest, LeastLoadedPrefersFewerCallsInFlight) {
  Fleet fleet(2);
  for (int i = 0; i < 10; ++i) fleet.health[0]->CallStarted();
  auto p = Picker::Build(Policy::kLeastLoaded, fleet.Endpoints(), {});
  EXPECT_EQ(Count(*p, 100), (std::map<int, int>{{1, 100}}));
}

TEST(PickerTest, RingHashIsConsistentAndAtLeast1024Entries) {
  Fleet fleet(1);
  auto one = Picker::Build(Policy::kRingHash, fleet.Endpoints(), {});
  EXPECT_GE(one->ring_size(), 1024u);
  Fleet three(3);
  auto p = Picker::Build(Policy::kRingHash, three.Endpoints(), {});
  auto q = Picker::Build(Policy::kRingHash, three.Endpoints(), {});
  PickState s1, s2;
  std::map<int, int> count;
  for (int k = 0; k < 3000; ++k) {
    uint64_t h = StableHash(absl::StrCat("key-", k));
    int a = p->Pick(s1, h);
    EXPECT_EQ(a, p->Pick(s1, h));
    EXPECT_EQ(a, q->Pick(s2, h));
    ++count[a];
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(count[i], 700) << i;  // About 1000 each.
    EXPECT_LT(count[i], 1300) << i;
  }
}

// Identity-keyed: removing one of N endpoints moves only its keys; adding
// one moves about 1/(N+1) of the keys, all to the new endpoint.
TEST(PickerTest, RingHashRemapsAboutOneNth) {
  Fleet fleet(5);
  std::vector<PickerEndpoint> five = fleet.Endpoints();
  std::vector<PickerEndpoint> four(five.begin(), five.end() - 1);
  auto p4 = Picker::Build(Policy::kRingHash, four, {});
  auto p5 = Picker::Build(Policy::kRingHash, five, {});
  PickState state;
  const int keys = 20000;
  int moved = 0;
  for (int k = 0; k < keys; ++k) {
    uint64_t h = StableHash(absl::StrCat("user-", k));
    int before = p4->Pick(state, h);
    int after = p5->Pick(state, h);
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, 4) << "a key moved between old endpoints";
    }
  }
  double share = static_cast<double>(moved) / keys;
  EXPECT_GT(share, 0.15);  // 1/5 expected.
  EXPECT_LT(share, 0.25);
}

TEST(PickerTest, RingHashSendsAFailedOwnersKeysToTheNextEndpoint) {
  Fleet fleet(3);
  auto p = Picker::Build(Policy::kRingHash, fleet.Endpoints(), {});
  PickState state;
  std::vector<int> owner;
  for (int k = 0; k < 1000; ++k) {
    owner.push_back(p->Pick(state, StableHash(absl::StrCat("k", k))));
  }
  fleet.Fail(1);
  for (int k = 0; k < 1000; ++k) {
    int now = p->Pick(state, StableHash(absl::StrCat("k", k)));
    if (owner[k] == 1) {
      EXPECT_NE(now, 1);
    } else {
      EXPECT_EQ(now, owner[k]);  // Other keys stay where they were.
    }
  }
}

TEST(PickerTest, RingHashStrictAlwaysNamesTheOwner) {
  Fleet fleet(3);
  std::vector<PickerEndpoint> eps = fleet.Endpoints();
  eps.push_back({nullptr, 1, "absent-shard"});  // Left; awaited.
  auto strict = Picker::Build(Policy::kRingHashStrict, eps, {});
  auto cache = Picker::Build(Policy::kRingHash, fleet.Endpoints(), {});
  PickState state;
  std::map<int, int> owners;
  for (int k = 0; k < 2000; ++k) {
    uint64_t h = StableHash(absl::StrCat("k", k));
    int owner = strict->Pick(state, h);
    ++owners[owner];
    // Present owners own the same keys as without the absent one, or the
    // absent one took them.
    if (owner != 3) {
      EXPECT_EQ(owner, cache->Pick(state, h));
    }
  }
  EXPECT_GT(owners[3], 300);  // About a quarter of the keys wait for it.
  fleet.Fail(0);
  for (int k = 0; k < 2000; ++k) {
    uint64_t h = StableHash(absl::StrCat("k", k));
    int before = cache->Pick(state, h);
    if (before == 1 || before == 2) continue;
    // A failed owner keeps its keys under strict (cache moves them).
    int owner = strict->Pick(state, h);
    EXPECT_TRUE(owner == 0 || owner == 3) << owner;
  }
}

TEST(PickerTest, StableHashIsFixedAcrossBuilds) {
  // Clients in different processes must agree on key owners.
  EXPECT_EQ(StableHash(""), StableHash(""));
  // FNV-1a 64 of "abc" through splitmix64's finaliser, computed independently.
  EXPECT_EQ(StableHash("abc"), 996580060897260808u);
  EXPECT_NE(StableHash("abc"), StableHash("abd"));
}

TEST(PickerTest, PolicyNamesRoundTrip) {
  for (Policy p : {Policy::kPickFirst, Policy::kRoundRobin,
                   Policy::kWeightedRoundRobin, Policy::kLeastLoaded,
                   Policy::kRingHash}) {
    EXPECT_EQ(*ParsePolicy(PolicyName(p)), p);
  }
  absl::StatusOr<Policy> bad = ParsePolicy("random");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("round_robin"), std::string::npos);
}

}  // namespace
}  // namespace bevrpc::balancing
