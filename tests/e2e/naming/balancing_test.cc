// Channels over several in-process servers: each target form that needs no
// external component (list:///, file:///, HOST:PORT), each balancer, and
// what happens when endpoints fail, appear and go.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "transport/sync.h"
#include "transport/testing/dns_server.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;

constexpr char kWho[] = "test.Who/Who";

// One replica: answers test.Who/Who with its index (after `delay`), or
// fails it with `fail_code` when that is set, and has the echo service;
// test.Who/Block waits for `release`.
struct Replica {
  std::unique_ptr<Server> server;
  int index = 0;
  absl::Duration delay = absl::ZeroDuration();
  std::atomic<int> fail_code{0};
  std::atomic<int> served{0};
  Notification block_started;
  Notification release;

  std::string address() const {
    return absl::StrCat("127.0.0.1:", server->port());
  }
};

std::unique_ptr<Replica> StartReplica(int index,
                                      absl::Duration delay = absl::ZeroDuration(),
                                      std::string listen = "127.0.0.1:0",
                                      int max_concurrent_calls = 0) {
  auto r = std::make_unique<Replica>();
  r->index = index;
  r->delay = delay;
  ServerOptions options;
  options.listen_address = listen;
  options.max_concurrent_calls = max_concurrent_calls;
  r->server = std::make_unique<Server>(options);
  Replica* raw = r.get();
  EXPECT_TRUE(echo::RegisterEchoService(*r->server).ok());
  EXPECT_TRUE(r->server
                  ->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                      kWho,
                      [raw](ServerContext&, const EchoRequest&,
                            EchoResponse* resp) {
                        if (raw->delay > absl::ZeroDuration()) {
                          absl::SleepFor(raw->delay);
                        }
                        if (int code = raw->fail_code.load()) {
                          return absl::Status(
                              static_cast<absl::StatusCode>(code),
                              absl::StrCat("replica ", raw->index,
                                           " fails on purpose"));
                        }
                        raw->served++;
                        resp->set_message(absl::StrCat(raw->index));
                        return absl::OkStatus();
                      }))
                  .ok());
  EXPECT_TRUE(r->server
                  ->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                      "test.Who/Block",
                      [raw](ServerContext&, const EchoRequest&,
                            EchoResponse* resp) {
                        raw->block_started.Notify();
                        if (!raw->release.WaitForNotificationWithTimeout(
                                absl::Minutes(1))) {
                          return absl::InternalError("never released");
                        }
                        resp->set_message(absl::StrCat(raw->index));
                        return absl::OkStatus();
                      }))
                  .ok());
  EXPECT_TRUE(r->server->Start().ok());
  return r;
}

class BalancingTest : public ::testing::Test {
 protected:
  void StartReplicas(int n) {
    for (int i = 0; i < n; ++i) replicas_.push_back(StartReplica(i));
  }
  void TearDown() override {
    for (auto& r : replicas_) {
      if (r != nullptr && !r->release.HasBeenNotified()) r->release.Notify();
    }
    // Handlers still running (blocked calls the client gave up on) finish
    // before the Replica members they use are destroyed.
    for (auto& r : replicas_) {
      if (r != nullptr) r->server->Shutdown(absl::ZeroDuration());
    }
  }
  std::string ListTarget() {
    std::vector<std::string> parts;
    for (auto& r : replicas_) parts.push_back(r->address());
    return "list:///" + absl::StrJoin(parts, ",");
  }
  std::unique_ptr<Channel> Open(const std::string& target,
                                const std::string& lb = "round_robin",
                                ChannelOptions options = {}) {
    options.load_balancer = lb;
    options.resolver.file_poll_interval = absl::Milliseconds(20);
    options.connect_backoff.initial = absl::Milliseconds(50);
    options.connect_backoff.max = absl::Milliseconds(200);
    auto channel = Channel::Create(target, options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return nullptr;
    // So that exact spreads do not depend on whether the first call raced
    // the first list (it would wait for it, then be placed by another
    // round-robin position).
    (*channel)->WaitForEndpoints(absl::Seconds(10)).IgnoreError();
    return *std::move(channel);
  }
  // The replica index that served one call, or -1 (failure recorded).
  static int Who(Channel& channel, CallOptions options = {}) {
    if (options.timeout == absl::InfiniteDuration()) {
      options.timeout = absl::Seconds(10);
    }
    EchoRequest req;
    EchoResponse resp;
    absl::Status s = channel.Call(kWho, req, &resp, options);
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return -1;
    return std::stoi(resp.message());
  }
  static std::map<int, int> Spread(Channel& channel, int calls,
                                   CallOptions options = {}) {
    std::map<int, int> count;
    for (int i = 0; i < calls; ++i) ++count[Who(channel, options)];
    return count;
  }
  std::string TempFile(absl::string_view name) {
    const char* dir = getenv("TEST_TMPDIR");
    return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name, "_",
                        getpid());
  }
  // Replaces `path` atomically with `text`.
  static void WriteFile(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp);
      out << text;
    }
    ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
  }
  // Waits (bounded) until the channel lists exactly `addresses`.
  static bool WaitForEndpoints(Channel& channel,
                               std::vector<std::string> addresses) {
    std::sort(addresses.begin(), addresses.end());
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      std::vector<std::string> now;
      for (const ChannelEndpoint& e : channel.endpoints()) {
        now.push_back(e.address);
      }
      std::sort(now.begin(), now.end());
      if (now == addresses) return true;
      absl::SleepFor(absl::Milliseconds(10));  // No event to wait on.
    }
    return false;
  }

  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(BalancingTest, RoundRobinSpreadsCallsEvenly) {
  StartReplicas(3);
  auto channel = Open(ListTarget());
  EXPECT_EQ(Spread(*channel, 300),
            (std::map<int, int>{{0, 100}, {1, 100}, {2, 100}}));
  std::vector<ChannelEndpoint> eps = channel->endpoints();
  ASSERT_EQ(eps.size(), 3u);
  for (const ChannelEndpoint& e : eps) {
    EXPECT_EQ(e.state, "READY") << e.address;
    EXPECT_EQ(e.calls_started, 100u) << e.address;
  }
}

TEST_F(BalancingTest, PickFirstUsesTheFirstEndpoint) {
  StartReplicas(3);
  auto channel = Open(ListTarget(), "pick_first");
  EXPECT_EQ(Spread(*channel, 50), (std::map<int, int>{{0, 50}}));
}

TEST_F(BalancingTest, WeightedRoundRobinFollowsFileWeights) {
  StartReplicas(2);
  std::string path = TempFile("weights");
  WriteFile(path, absl::StrCat(replicas_[0]->address(), " weight=3\n",
                               replicas_[1]->address(), " weight=1\n"));
  auto channel = Open("file://" + path, "weighted_round_robin");
  EXPECT_EQ(Spread(*channel, 400), (std::map<int, int>{{0, 300}, {1, 100}}));
}

TEST_F(BalancingTest, LeastLoadedSteersAwayFromASlowReplica) {
  replicas_.push_back(StartReplica(0, absl::Milliseconds(20)));
  replicas_.push_back(StartReplica(1));
  replicas_.push_back(StartReplica(2));
  auto channel = Open(ListTarget(), "least_loaded");
  // 8 callers in parallel, 100 calls each.
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 100; ++i) Who(*channel);
    });
  }
  for (auto& t : callers) t.join();
  int slow = replicas_[0]->served;
  int fast = replicas_[1]->served + replicas_[2]->served;
  EXPECT_EQ(slow + fast, 800);
  std::printf("least_loaded: slow replica %d calls, fast replicas %d + %d\n",
              slow, replicas_[1]->served.load(), replicas_[2]->served.load());
  // Round robin would give it a third (267).
  EXPECT_LT(slow, 80);
  EXPECT_GT(replicas_[1]->served, 250);
  EXPECT_GT(replicas_[2]->served, 250);
}

TEST_F(BalancingTest, RingHashKeepsAKeyOnOneReplicaAndMovesItWhenDown) {
  StartReplicas(3);
  auto channel = Open(ListTarget(), "ring_hash");
  CallOptions options;
  std::map<int, int> owners;
  std::vector<int> owner_of(30);
  for (int k = 0; k < 30; ++k) {
    options.hash_key = absl::StrCat("user-", k);
    std::map<int, int> spread = Spread(*channel, 5, options);
    ASSERT_EQ(spread.size(), 1u) << options.hash_key;  // Always one owner.
    owner_of[k] = spread.begin()->first;
    ++owners[owner_of[k]];
  }
  EXPECT_EQ(owners.size(), 3u);  // 30 keys reach every replica.
  // The owner of user-0 goes away: its keys move (cache semantics), the
  // others stay.
  int gone = owner_of[0];
  replicas_[gone]->server->Shutdown(absl::Seconds(1));
  for (int k = 0; k < 30; ++k) {
    options.hash_key = absl::StrCat("user-", k);
    int now = Who(*channel, options);
    if (owner_of[k] == gone) {
      EXPECT_NE(now, gone);
    } else {
      EXPECT_EQ(now, owner_of[k]) << options.hash_key;
    }
  }
}

TEST_F(BalancingTest, ADeadEndpointIsSkippedAndCallsDoNotFail) {
  StartReplicas(2);
  // A port with nothing listening: bind, note, close.
  auto dead = StartReplica(9);
  std::string dead_address = dead->address();
  dead->server->Shutdown(absl::ZeroDuration());
  dead.reset();
  auto channel = Open(absl::StrCat("list:///", dead_address, ",",
                                   replicas_[0]->address(), ",",
                                   replicas_[1]->address()));
  std::map<int, int> spread = Spread(*channel, 200);
  EXPECT_EQ(spread.count(-1), 0u);  // Not one call failed.
  EXPECT_EQ(spread[0] + spread[1], 200);
  EXPECT_GT(spread[0], 90);  // Even, within the few calls rerouted.
  EXPECT_GT(spread[1], 90);
  for (const ChannelEndpoint& e : channel->endpoints()) {
    EXPECT_EQ(e.state, e.address == dead_address ? "TRANSIENT_FAILURE" : "READY")
        << e.address;
  }
}

TEST_F(BalancingTest, EveryEndpointDownFailsWithTheConnectError) {
  auto dead = StartReplica(0);
  std::string dead_address = dead->address();
  dead->server->Shutdown(absl::ZeroDuration());
  dead.reset();
  auto channel = Open(dead_address);
  EchoRequest req;
  EchoResponse resp;
  CallOptions options;
  options.timeout = absl::Seconds(10);
  absl::Status s = channel->Call(kWho, req, &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find(dead_address), std::string::npos) << s;
}

TEST_F(BalancingTest, FileTargetFollowsChangesAndRemovedEndpointsFinishTheirCalls) {
  StartReplicas(3);
  std::string path = TempFile("fleet");
  WriteFile(path, absl::StrCat(replicas_[0]->address(), "\n",
                               replicas_[1]->address(), "\n"));
  auto channel = Open("file://" + path);
  EXPECT_EQ(Spread(*channel, 20), (std::map<int, int>{{0, 10}, {1, 10}}));
  // A call open on replica 0 or 1 while both are removed.
  EchoRequest req;
  EchoResponse resp;
  Notification finished;
  absl::Status status;
  CallOptions options;
  options.timeout = absl::Seconds(30);
  channel->CallAsync("test.Who/Block", req, &resp, options,
                     [&](absl::Status s) {
                       status = s;
                       finished.Notify();
                     });
  Replica* blocked = nullptr;
  while (blocked == nullptr) {  // Bounded by block_started's own wait.
    for (int i = 0; i < 2; ++i) {
      if (replicas_[i]->block_started.WaitForNotificationWithTimeout(
              absl::Milliseconds(10))) {
        blocked = replicas_[i].get();
      }
    }
  }
  WriteFile(path, replicas_[2]->address() + "\n");
  ASSERT_TRUE(WaitForEndpoints(*channel, {replicas_[2]->address()}));
  EXPECT_EQ(Spread(*channel, 10), (std::map<int, int>{{2, 10}}));
  EXPECT_FALSE(finished.HasBeenNotified());
  blocked->release.Notify();
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(resp.message(), absl::StrCat(blocked->index));
}

TEST_F(BalancingTest, MissingFileFailsCallsNamingTheFile) {
  std::string path = TempFile("missing");
  std::remove(path.c_str());
  auto channel = Open("file://" + path);
  EchoRequest req;
  EchoResponse resp;
  CallOptions options;
  options.timeout = absl::Seconds(10);
  absl::Status s = channel->Call(kWho, req, &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find(path), std::string::npos) << s;
}

TEST_F(BalancingTest, EmptyListFailsFastUnlessWaitForReady) {
  StartReplicas(1);
  std::string path = TempFile("empty");
  WriteFile(path, "# nobody yet\n");
  auto channel = Open("file://" + path);
  ASSERT_TRUE(channel->WaitForEndpoints(absl::Seconds(10)).ok());
  EchoRequest req;
  EchoResponse resp;
  CallOptions options;
  options.timeout = absl::Seconds(30);
  absl::Status s = channel->Call(kWho, req, &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("empty"), std::string::npos) << s;

  // wait_for_ready: a unary call and a stream wait for the endpoint.
  options.wait_for_ready = true;
  Notification finished;
  absl::Status status;
  channel->CallAsync(kWho, req, &resp, options, [&](absl::Status st) {
    status = st;
    finished.Notify();
  });
  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel, "bevrpc.echo.Echo/Chat", MethodKind::kBidiStreaming, nullptr,
      options);
  EchoRequest hello;
  hello.set_message("queued while parked");
  ASSERT_TRUE(stream->Write(hello));
  stream->CloseSend();
  WriteFile(path, replicas_[0]->address() + "\n");
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(resp.message(), "0");
  EchoResponse echoed;
  ASSERT_TRUE(stream->Read(&echoed));
  EXPECT_EQ(echoed.message(), "queued while parked");
  EXPECT_FALSE(stream->Read(&echoed));
  EXPECT_TRUE(stream->Finish().ok()) << stream->Finish();
}

TEST_F(BalancingTest, ParkedCallsHonourDeadlineAndCancel) {
  std::string path = TempFile("never");
  WriteFile(path, "");
  auto channel = Open("file://" + path);
  EchoRequest req;
  EchoResponse resp;
  CallOptions options;
  options.wait_for_ready = true;
  options.timeout = absl::Milliseconds(100);
  absl::Status s = channel->Call(kWho, req, &resp, options);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("waiting for endpoints"), std::string::npos) << s;

  options.timeout = absl::Seconds(60);
  Notification finished;
  absl::Status status;
  CallHandle handle = channel->CallAsync(kWho, req, &resp, options,
                                         [&](absl::Status st) {
                                           status = st;
                                           finished.Notify();
                                         });
  channel->Cancel(handle);
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
}

TEST_F(BalancingTest, ManyConnectionsPerEndpointShareTheCalls) {
  StartReplicas(2);
  ChannelOptions options;
  options.num_connections = 3;
  options.io_threads = 2;
  auto channel = Open(ListTarget(), "round_robin", options);
  EXPECT_EQ(Spread(*channel, 100), (std::map<int, int>{{0, 50}, {1, 50}}));
}

TEST_F(BalancingTest, DestroyingTheChannelFailsParkedAndOpenCalls) {
  StartReplicas(1);
  std::string path = TempFile("destroy");
  WriteFile(path, "");
  auto channel = Open("file://" + path);
  EchoRequest req;
  EchoResponse resp;
  CallOptions options;
  options.wait_for_ready = true;
  Notification parked_done;
  absl::Status parked_status;
  channel->CallAsync(kWho, req, &resp, options, [&](absl::Status s) {
    parked_status = s;
    parked_done.Notify();
  });
  channel.reset();
  ASSERT_TRUE(parked_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(parked_status.code(), absl::StatusCode::kCancelled) << parked_status;
}

// Shard semantics: a key's calls wait for its owner (by id), through a
// crash and a restart on another port, and never go to another shard.
TEST_F(BalancingTest, RingHashStrictKeysWaitForTheirOwner) {
  StartReplicas(3);
  std::string path = TempFile("shards");
  auto fleet = [&](int replaced, Replica* by) {
    std::string text;
    for (int i = 0; i < 3; ++i) {
      Replica* r = i == replaced ? by : replicas_[i].get();
      if (r != nullptr) {
        absl::StrAppend(&text, r->address(), " id=shard-", i, "\n");
      }
    }
    return text;
  };
  WriteFile(path, fleet(-1, nullptr));
  ChannelOptions options;
  options.ring_hash_strict_hold = absl::Minutes(5);
  auto channel = Open("file://" + path, "ring_hash_strict", options);
  // A key and its owner.
  CallOptions keyed;
  keyed.hash_key = "user-42";
  const int owner = Who(*channel, keyed);
  ASSERT_GE(owner, 0);
  // The owner crashes (still listed): calls for its keys wait, others go on.
  replicas_[owner]->server->Shutdown(absl::ZeroDuration());
  EchoRequest req;
  EchoResponse held_resp;
  Notification held_done;
  absl::Status held_status;
  keyed.timeout = absl::Seconds(60);
  channel->CallAsync(kWho, req, &held_resp, keyed, [&](absl::Status st) {
    held_status = st;
    held_done.Notify();
  });
  CallOptions short_deadline = keyed;
  short_deadline.timeout = absl::Milliseconds(300);
  EchoResponse ignored;
  absl::Status expired = channel->Call(kWho, req, &ignored, short_deadline);
  EXPECT_EQ(expired.code(), absl::StatusCode::kDeadlineExceeded) << expired;
  EXPECT_FALSE(held_done.HasBeenNotified());
  // It is removed from the list, then comes back on another port with its
  // id: the held call is served there, not by another shard.
  WriteFile(path, fleet(owner, nullptr));
  ASSERT_TRUE(WaitForEndpoints(*channel, [&] {
    std::vector<std::string> a;
    for (int i = 0; i < 3; ++i) {
      if (i != owner) a.push_back(replicas_[i]->address());
    }
    return a;
  }()));
  EXPECT_FALSE(held_done.HasBeenNotified());
  auto restarted = StartReplica(7);
  WriteFile(path, fleet(owner, restarted.get()));
  ASSERT_TRUE(held_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_TRUE(held_status.ok()) << held_status;
  EXPECT_EQ(held_resp.message(), "7");
  keyed.timeout = absl::Seconds(10);
  EXPECT_EQ(Who(*channel, keyed), 7);
  restarted->release.Notify();
}

TEST_F(BalancingTest, RingHashStrictHoldEndsAndKeysMoveOn) {
  StartReplicas(2);
  std::string path = TempFile("hold");
  WriteFile(path, absl::StrCat(replicas_[0]->address(), " id=a\n",
                               replicas_[1]->address(), " id=b\n"));
  ChannelOptions options;
  options.ring_hash_strict_hold = absl::Milliseconds(200);
  auto channel = Open("file://" + path, "ring_hash_strict", options);
  CallOptions keyed;
  // A key owned by replica 1.
  int k = 0;
  for (; k < 100; ++k) {
    keyed.hash_key = absl::StrCat("k", k);
    if (Who(*channel, keyed) == 1) break;
  }
  ASSERT_LT(k, 100);
  WriteFile(path, absl::StrCat(replicas_[0]->address(), " id=a\n"));
  ASSERT_TRUE(WaitForEndpoints(*channel, {replicas_[0]->address()}));
  // Within the hold the key waits; after it, the key moves to replica 0.
  keyed.timeout = absl::Seconds(30);
  EXPECT_EQ(Who(*channel, keyed), 0);
}

// dns:/// against a DNS server on 127.0.0.1: replicas on 127.0.0.1-3 share
// one port; the records decide who gets calls.
TEST_F(BalancingTest, DnsTargetFollowsRecordsAndReResolvesOnFailure) {
  auto dns = transport::testing::DnsTestServer::Start();
  ASSERT_TRUE(dns.ok()) << dns.status();
  replicas_.push_back(StartReplica(0));
  const int port = replicas_[0]->server->port();
  replicas_.push_back(StartReplica(1, absl::ZeroDuration(),
                                   absl::StrCat("127.0.0.2:", port)));
  replicas_.push_back(StartReplica(2, absl::ZeroDuration(),
                                   absl::StrCat("127.0.0.3:", port)));
  ASSERT_TRUE((*dns)->SetRecords("svc.test", {"127.0.0.1", "127.0.0.2"}).ok());
  ChannelOptions options;
  // Periodic refresh off in effect: changes must come from a failure.
  options.resolver.dns_refresh_interval = absl::Hours(1);
  options.resolver.dns_min_refresh_interval = absl::Milliseconds(10);
  auto channel = Open(absl::StrCat("dns://", (*dns)->address(), "/svc.test:",
                                   port),
                      "round_robin", options);
  EXPECT_EQ(Spread(*channel, 20), (std::map<int, int>{{0, 10}, {1, 10}}));
  // Replica 1 dies and leaves DNS, replica 2 joins: the failed connection
  // makes the channel ask again.
  ASSERT_TRUE((*dns)->SetRecords("svc.test", {"127.0.0.1", "127.0.0.3"}).ok());
  replicas_[1]->server->Shutdown(absl::ZeroDuration());
  ASSERT_TRUE(WaitForEndpoints(
      *channel, {absl::StrCat("127.0.0.1:", port),
                 absl::StrCat("127.0.0.3:", port)}));
  std::map<int, int> spread = Spread(*channel, 20);
  EXPECT_EQ(spread.count(-1), 0u);
  EXPECT_EQ(spread, (std::map<int, int>{{0, 10}, {2, 10}}));
}

TEST_F(BalancingTest, UnresolvableHostIsAnError) {
  auto channel = Channel::Create("no-such-host.invalid:80");
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(channel.status().message().find("no-such-host.invalid"),
            std::string::npos)
      << channel.status();
}

// A replica at its concurrency limit refuses before dispatch with a
// retry-now pushback: the call moves to another replica, transparently.
TEST_F(BalancingTest, AnOverloadedReplicaSendsTheCallElsewhere) {
  replicas_.push_back(
      StartReplica(0, absl::ZeroDuration(), "127.0.0.1:0", /*max=*/1));
  replicas_.push_back(StartReplica(1));
  auto channel = Open(ListTarget(), "pick_first");
  EchoRequest req;
  EchoResponse held;
  Notification held_done;
  CallOptions options;
  options.timeout = absl::Seconds(60);
  channel->CallAsync("test.Who/Block", req, &held, options,
                     [&](absl::Status) { held_done.Notify(); });
  ASSERT_TRUE(replicas_[0]->block_started.WaitForNotificationWithTimeout(
      absl::Seconds(30)));
  // Replica 0 is full: pick_first still picks it; it refuses; replica 1
  // answers.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Who(*channel), 1);
  EXPECT_EQ(replicas_[0]->served, 0);
  replicas_[0]->release.Notify();
  ASSERT_TRUE(held_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(Who(*channel), 0);  // Free again: pick_first's choice.
}

TEST_F(BalancingTest, AnOverloadedOnlyReplicaAnswersWithItsRefusal) {
  replicas_.push_back(
      StartReplica(0, absl::ZeroDuration(), "127.0.0.1:0", /*max=*/1));
  auto channel = Open(ListTarget());
  EchoRequest req;
  EchoResponse held;
  Notification held_done;
  CallOptions options;
  options.timeout = absl::Seconds(60);
  channel->CallAsync("test.Who/Block", req, &held, options,
                     [&](absl::Status) { held_done.Notify(); });
  ASSERT_TRUE(replicas_[0]->block_started.WaitForNotificationWithTimeout(
      absl::Seconds(30)));
  EchoResponse resp;
  Metadata trailers;
  options.timeout = absl::Seconds(10);
  absl::Status s = channel->Call(kWho, req, &resp, options, &trailers);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(trailers["bevrpc-retry-pushback-ms"], "0");
  replicas_[0]->release.Notify();
  ASSERT_TRUE(held_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST_F(BalancingTest, BadTargetsAndBalancersAreClearErrors) {
  auto bad = Channel::Create("list:///");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("accepted:"), std::string::npos);
  ChannelOptions options;
  options.load_balancer = "fastest";
  auto lb = Channel::Create("127.0.0.1:1", options);
  ASSERT_FALSE(lb.ok());
  EXPECT_NE(lb.status().message().find("round_robin"), std::string::npos)
      << lb.status();
}

// Outlier ejection (ChannelOptions::outlier_detection,
// rpc/balancing/outlier_detector.h).
class EjectionTest : public BalancingTest {
 protected:
  // One call of test.Who/Who: its status, and (OK) the replica's index.
  static absl::Status Call(Channel& channel, int* who = nullptr) {
    EchoRequest req;
    EchoResponse resp;
    CallOptions options;
    options.timeout = absl::Seconds(10);
    absl::Status s = channel.Call(kWho, req, &resp, options);
    if (s.ok() && who != nullptr) *who = std::stoi(resp.message());
    return s;
  }
  static ChannelEndpoint Endpoint(Channel& channel, const std::string& address) {
    for (const ChannelEndpoint& e : channel.endpoints()) {
      if (e.address == address) return e;
    }
    ADD_FAILURE() << "no endpoint " << address;
    return {};
  }
  static int CountEjected(Channel& channel) {
    int n = 0;
    for (const ChannelEndpoint& e : channel.endpoints()) n += e.state == "EJECTED";
    return n;
  }
  // Waits (bounded) until `address` is in `state`.
  static bool WaitForState(Channel& channel, const std::string& address,
                           const std::string& state) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (Endpoint(channel, address).state == state) return true;
      absl::SleepFor(absl::Milliseconds(10));  // No event to wait on.
    }
    return false;
  }
};

TEST_F(EjectionTest, AFailingEndpointIsEjectedAndComesBackWhenHealthy) {
  StartReplicas(3);
  replicas_[2]->fail_code = static_cast<int>(absl::StatusCode::kUnavailable);
  const std::string sick = replicas_[2]->address();
  ChannelOptions options;
  // Long enough that the calls below all fall within the ejection, even
  // under a sanitizer.
  options.outlier_detection.base_ejection_time = absl::Seconds(3);
  auto channel = Open(ListTarget(), "round_robin", options);
  // Round robin: every third call fails, until the fifth failure in a row
  // on that endpoint ejects it.
  int failures = 0;
  int calls = 0;
  while (failures < 5 && calls < 100) {
    absl::Status s = Call(*channel);
    ++calls;
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
      EXPECT_NE(s.message().find("fails on purpose"), std::string::npos) << s;
      ++failures;
      EXPECT_EQ(Endpoint(*channel, sick).state,
                failures < 5 ? "READY" : "EJECTED");
    }
  }
  EXPECT_EQ(failures, 5);
  EXPECT_EQ(calls, 15);
  ChannelEndpoint ejected = Endpoint(*channel, sick);
  EXPECT_EQ(ejected.state, "EJECTED");
  EXPECT_EQ(ejected.ejections, 1u);
  EXPECT_GT(ejected.ejection_left, absl::ZeroDuration());
  EXPECT_LE(ejected.ejection_left, absl::Seconds(3));
  EXPECT_EQ(ejected.calls_started, 5u);
  // Meanwhile every call goes to the two healthy replicas.
  std::map<int, int> spread;
  for (int i = 0; i < 30; ++i) {
    int who = -1;
    absl::Status s = Call(*channel, &who);
    EXPECT_TRUE(s.ok()) << s;
    ++spread[who];
  }
  EXPECT_EQ(spread, (std::map<int, int>{{0, 15}, {1, 15}}));
  EXPECT_EQ(Endpoint(*channel, sick).calls_started, 5u);
  EXPECT_EQ(Endpoint(*channel, sick).state, "EJECTED");
  // Healthy again: it is back after its ejection time, and serves.
  replicas_[2]->fail_code = 0;
  ASSERT_TRUE(WaitForState(*channel, sick, "READY"));
  spread.clear();
  for (int i = 0; i < 30; ++i) {
    int who = -1;
    absl::Status s = Call(*channel, &who);
    EXPECT_TRUE(s.ok()) << s;
    ++spread[who];
  }
  EXPECT_EQ(spread, (std::map<int, int>{{0, 10}, {1, 10}, {2, 10}}));
  EXPECT_EQ(replicas_[2]->served, 10);
  ChannelEndpoint back = Endpoint(*channel, sick);
  EXPECT_EQ(back.state, "READY");
  EXPECT_EQ(back.ejections, 1u);
  EXPECT_EQ(back.ejection_left, absl::ZeroDuration());
}

TEST_F(EjectionTest, AtMostTheAllowedShareIsEjectedAndCallsStillFlow) {
  StartReplicas(3);
  for (auto& r : replicas_) {
    r->fail_code = static_cast<int>(absl::StatusCode::kUnavailable);
  }
  auto channel = Open(ListTarget());  // Default: 50 %, so one of three.
  int most_ejected = 0;
  for (int i = 0; i < 90; ++i) {
    absl::Status s = Call(*channel);
    // Every call reached a server: its answer, never a local refusal.
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_NE(s.message().find("fails on purpose"), std::string::npos) << s;
    most_ejected = std::max(most_ejected, CountEjected(*channel));
  }
  EXPECT_EQ(most_ejected, 1);
  uint64_t started = 0;
  uint64_t ejections = 0;
  for (const ChannelEndpoint& e : channel->endpoints()) {
    started += e.calls_started;
    ejections += e.ejections;
  }
  EXPECT_EQ(started, 90u);
  EXPECT_GE(ejections, 1u);
}

TEST_F(EjectionTest, WithEveryEndpointEjectedCallsStillGoSomewhere) {
  StartReplicas(3);
  for (auto& r : replicas_) {
    r->fail_code = static_cast<int>(absl::StatusCode::kUnavailable);
  }
  ChannelOptions options;
  options.outlier_detection.max_ejection_percent = 100;
  options.outlier_detection.base_ejection_time = absl::Seconds(60);
  options.outlier_detection.max_ejection_time = absl::Seconds(60);
  auto channel = Open(ListTarget(), "round_robin", options);
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(Call(*channel).code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(CountEjected(*channel), 3);
  // Nothing usable: the balancer picks among all of them, and the servers
  // answer.
  replicas_[1]->fail_code = 0;
  std::map<int, int> spread;
  for (int i = 0; i < 30; ++i) {
    int who = -1;
    absl::Status s = Call(*channel, &who);
    if (s.ok()) {
      ++spread[who];
    } else {
      EXPECT_NE(s.message().find("fails on purpose"), std::string::npos) << s;
    }
  }
  EXPECT_EQ(spread, (std::map<int, int>{{1, 10}}));
}

TEST_F(EjectionTest, DisabledNeverEjects) {
  StartReplicas(3);
  replicas_[2]->fail_code = static_cast<int>(absl::StatusCode::kUnavailable);
  ChannelOptions options;
  options.outlier_detection.enabled = false;
  auto channel = Open(ListTarget(), "round_robin", options);
  int failures = 0;
  for (int i = 0; i < 60; ++i) failures += !Call(*channel).ok();
  EXPECT_EQ(failures, 20);
  EXPECT_EQ(Endpoint(*channel, replicas_[2]->address()).state, "READY");
  EXPECT_EQ(Endpoint(*channel, replicas_[2]->address()).ejections, 0u);
}

TEST_F(EjectionTest, ClientErrorsAndCancellationsDoNotEject) {
  StartReplicas(3);
  replicas_[2]->fail_code = static_cast<int>(absl::StatusCode::kInvalidArgument);
  auto channel = Open(ListTarget());
  int failures = 0;
  for (int i = 0; i < 60; ++i) {
    absl::Status s = Call(*channel);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
      ++failures;
    }
  }
  EXPECT_EQ(failures, 20);
  // Calls the client cancels (six or seven per replica, on the blocking
  // method, so they are open when cancelled).
  replicas_[2]->fail_code = 0;
  for (int i = 0; i < 20; ++i) {
    EchoRequest req;
    EchoResponse resp;
    Notification done;
    absl::Status status;
    CallHandle h = channel->CallAsync("test.Who/Block", req, &resp, {},
                                      [&](absl::Status s) {
                                        status = s;
                                        done.Notify();
                                      });
    channel->Cancel(h);
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  }
  EXPECT_EQ(CountEjected(*channel), 0);
  for (const ChannelEndpoint& e : channel->endpoints()) {
    EXPECT_EQ(e.ejections, 0u) << e.address;
  }
}

}  // namespace
}  // namespace bevrpc
