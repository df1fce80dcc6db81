// Tests for the dns:/// resolver against DnsTestServer on 127.0.0.1.
//
// Resolvers live on a LoopThread's loop; the test thread waits on listener
// events and on the server's query counts, always with a bound.
#include "rpc/naming/dns_resolver.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/naming/resolver.h"
#include "rpc/naming/target.h"
#include "transport/event_loop.h"
#include "transport/sync.h"
#include "transport/testing/dns_server.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::naming {
namespace {

using ::bevrpc::transport::testing::DnsTestServer;
using ::bevrpc::transport::testing::LoopThread;
using Clock = std::chrono::steady_clock;

constexpr absl::Duration kWait = absl::Seconds(10);

std::vector<std::string> Addresses(const EndpointList& list) {
  std::vector<std::string> out;
  for (const EndpointInfo& e : list) out.push_back(e.address);
  return out;
}

// What the listener saw, in order, with the time of each call.
struct Events {
  Mutex mu;
  CondVar cv;
  std::vector<absl::StatusOr<EndpointList>> got ABSL_GUARDED_BY(mu);
  std::vector<Clock::time_point> at ABSL_GUARDED_BY(mu);

  void Add(absl::StatusOr<EndpointList> e) {
    MutexLock lock(&mu);
    got.push_back(std::move(e));
    at.push_back(Clock::now());
    cv.SignalAll();
  }
  // Waits until at least n events; false on timeout.
  bool WaitFor(size_t n) {
    MutexLock lock(&mu);
    return cv.WaitUntil(&mu, kWait, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return got.size() >= n;
    });
  }
  size_t size() {
    MutexLock lock(&mu);
    return got.size();
  }
  absl::StatusOr<EndpointList> Get(size_t i) {
    MutexLock lock(&mu);
    return got.at(i);
  }
  Clock::time_point TimeOf(size_t i) {
    MutexLock lock(&mu);
    return at.at(i);
  }
};

class DnsNameResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<DnsTestServer>> s = DnsTestServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    // Generous: a loaded machine must not turn an answer into a timeout.
    options_.dns_timeout = absl::Seconds(2);
    // One query per family per lookup, so SERVFAILs are counted simply.
    options_.dns_attempts = 1;
  }

  void TearDown() override {
    ASSERT_TRUE(lt_.RunOnLoop([this] { resolver_.reset(); }));
    FlushLoop();
  }

  std::string Target(absl::string_view host_port) const {
    return absl::StrCat("dns://", server_->address(), "/", host_port);
  }

  absl::Status Create(const std::string& target_text) {
    absl::StatusOr<naming::Target> target = ParseTarget(target_text);
    if (!target.ok()) return target.status();
    absl::Status status;
    EXPECT_TRUE(lt_.RunOnLoop([&] {
      absl::StatusOr<std::unique_ptr<Resolver>> r =
          NewDnsResolver(*target, lt_.loop(), options_);
      status = r.status();
      if (r.ok()) resolver_ = *std::move(r);
    }));
    return status;
  }

  // Starts the resolver; returns how many events arrived inside Start().
  size_t Start() {
    size_t inline_events = 0;
    EXPECT_TRUE(lt_.RunOnLoop([&] {
      resolver_->Start([events = events_](absl::StatusOr<EndpointList> e) {
        events->Add(std::move(e));
      });
      inline_events = events_->size();
    }));
    return inline_events;
  }

  void RequestRefresh(int times = 1) {
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      for (int i = 0; i < times; ++i) resolver_->RequestRefresh();
    }));
  }

  // Returns after the loop has run everything already scheduled, including
  // libevent's deferred callbacks (a zero timer fires behind them).
  void FlushLoop() {
    Notification flushed;
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      auto* timer = new transport::Timer(lt_.loop());
      timer->Start(absl::ZeroDuration(), [timer, &flushed] {
        delete timer;
        flushed.Notify();
      });
    }));
    ASSERT_TRUE(flushed.WaitForNotificationWithTimeout(kWait));
  }

  std::unique_ptr<DnsTestServer> server_;
  ResolverOptions options_;
  std::shared_ptr<Events> events_ = std::make_shared<Events>();
  LoopThread lt_;
  std::unique_ptr<Resolver> resolver_;  // loop thread only
};

TEST_F(DnsNameResolverTest, ReportsTheFirstListLater) {
  ASSERT_TRUE(
      server_->SetRecords("svc.test", {"10.0.0.2", "::1", "10.0.0.1"}).ok());
  ASSERT_TRUE(Create(Target("svc.test:80")).ok());
  EXPECT_EQ(Start(), 0u);
  ASSERT_TRUE(events_->WaitFor(1));
  absl::StatusOr<EndpointList> list = events_->Get(0);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list), (std::vector<std::string>{
                                  "10.0.0.2:80", "10.0.0.1:80", "[::1]:80"}));
  for (const EndpointInfo& e : *list) EXPECT_EQ(e.weight, 1u);
}

TEST_F(DnsNameResolverTest, ReResolvesPeriodicallyAndReportsOnlyChanges) {
  options_.dns_refresh_interval = absl::Milliseconds(50);
  options_.dns_min_refresh_interval = absl::Milliseconds(10);
  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.1"}).ok());
  ASSERT_TRUE(Create(Target("svc.test:80")).ok());
  Start();
  ASSERT_TRUE(events_->WaitFor(1));
  // Two more resolutions (A + AAAA each) with the same answer: no event.
  ASSERT_TRUE(server_->WaitForQueryCount("svc.test", 6, kWait));
  FlushLoop();
  EXPECT_EQ(events_->size(), 1u);

  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.1", "10.0.0.2"}).ok());
  ASSERT_TRUE(events_->WaitFor(2));
  absl::StatusOr<EndpointList> list = events_->Get(1);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list),
            (std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80"}));
}

TEST_F(DnsNameResolverTest, RequestRefreshWaitsForTheMinIntervalAndCoalesces) {
  constexpr absl::Duration kMin = absl::Milliseconds(400);
  options_.dns_refresh_interval = absl::Hours(1);
  options_.dns_min_refresh_interval = kMin;
  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.1"}).ok());
  ASSERT_TRUE(Create(Target("svc.test:80")).ok());
  Start();
  ASSERT_TRUE(events_->WaitFor(1));
  const Clock::time_point first = events_->TimeOf(0);
  EXPECT_EQ(server_->QueryCount("svc.test"), 2);

  // Five failing connections right after the first list: one lookup, no
  // sooner than kMin after the first one finished.
  RequestRefresh(5);
  ASSERT_TRUE(server_->WaitForQueryCount("svc.test", 4, kWait));
  const absl::Duration gap = absl::FromChrono(Clock::now() - first);
  // The listener ran a few microseconds after the resolver noted the time.
  EXPECT_GE(gap, kMin - absl::Milliseconds(20));

  // The next refresh finds a change; by then exactly three lookups were
  // made: the five requests above were coalesced into one.
  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.3"}).ok());
  RequestRefresh();
  ASSERT_TRUE(events_->WaitFor(2));
  FlushLoop();
  EXPECT_EQ(server_->QueryCount("svc.test"), 6);
  absl::StatusOr<EndpointList> list = events_->Get(1);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list), (std::vector<std::string>{"10.0.0.3:80"}));
}

TEST_F(DnsNameResolverTest, ErrorsBeforeAnyListAreReportedAndRetried) {
  options_.dns_refresh_interval = absl::Seconds(1);
  options_.dns_min_refresh_interval = absl::Milliseconds(10);
  ASSERT_TRUE(Create(Target("missing.test:80")).ok());
  Start();
  ASSERT_TRUE(events_->WaitFor(2));  // The first failure and a retry.
  for (size_t i : {0, 1}) {
    absl::StatusOr<EndpointList> e = events_->Get(i);
    ASSERT_EQ(e.status().code(), absl::StatusCode::kNotFound) << e.status();
    EXPECT_TRUE(absl::StrContains(e.status().message(), "missing.test:80"))
        << e.status();
    EXPECT_TRUE(absl::StrContains(e.status().message(), "NXDOMAIN"))
        << e.status();
  }
  // The name appears: a later retry finds it.
  ASSERT_TRUE(server_->SetRecords("missing.test", {"10.0.0.7"}).ok());
  absl::StatusOr<EndpointList> last = absl::UnknownError("none");
  for (size_t n = 3; events_->WaitFor(n); ++n) {
    last = events_->Get(n - 1);
    if (last.ok()) break;
  }
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(Addresses(*last), (std::vector<std::string>{"10.0.0.7:80"}));
}

TEST_F(DnsNameResolverTest, ServfailBeforeAnyListIsUnavailable) {
  server_->SetServfail("broken.test");
  ASSERT_TRUE(Create(Target("broken.test:80")).ok());
  Start();
  ASSERT_TRUE(events_->WaitFor(1));
  absl::StatusOr<EndpointList> e = events_->Get(0);
  ASSERT_EQ(e.status().code(), absl::StatusCode::kUnavailable) << e.status();
  EXPECT_TRUE(absl::StrContains(e.status().message(), "broken.test"));
}

TEST_F(DnsNameResolverTest, KeepsTheOldListQuietlyWhileResolutionFails) {
  options_.dns_refresh_interval = absl::Milliseconds(50);
  options_.dns_min_refresh_interval = absl::Milliseconds(10);
  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.1"}).ok());
  ASSERT_TRUE(Create(Target("svc.test:80")).ok());
  Start();
  ASSERT_TRUE(events_->WaitFor(1));

  // Several failed resolutions (SERVFAIL, one attempt: 2 queries each),
  // then one that gives an (un)changed answer.
  server_->SetServfail("svc.test");
  const int before = server_->QueryCount("svc.test");
  ASSERT_TRUE(server_->WaitForQueryCount("svc.test", before + 6, kWait));
  server_->Remove("svc.test");  // NXDOMAIN: a failure of another kind.
  ASSERT_TRUE(server_->WaitForQueryCount("svc.test", before + 10, kWait));
  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.2"}).ok());

  // The only event after the first list is the recovered new list.
  ASSERT_TRUE(events_->WaitFor(2));
  FlushLoop();
  ASSERT_EQ(events_->size(), 2u);
  absl::StatusOr<EndpointList> list = events_->Get(1);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list), (std::vector<std::string>{"10.0.0.2:80"}));
}

TEST_F(DnsNameResolverTest, NoListenerCallAfterDestructionWithALookupInFlight) {
  server_->SetNoAnswer("slow.test");
  options_.dns_timeout = absl::Seconds(5);
  ASSERT_TRUE(Create(Target("slow.test:80")).ok());
  Start();
  ASSERT_TRUE(server_->WaitForQueryCount("slow.test", 2, kWait));
  ASSERT_TRUE(lt_.RunOnLoop([this] { resolver_.reset(); }));
  FlushLoop();
  EXPECT_EQ(events_->size(), 0u);
}

TEST_F(DnsNameResolverTest, NoListenerCallWhenDestroyedRightAfterStart) {
  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.1"}).ok());
  for (const std::string& target :
       {Target("svc.test:80"), Target("10.0.0.1:80")}) {
    ASSERT_TRUE(Create(target).ok());
    ASSERT_TRUE(lt_.RunOnLoop([this] {
      resolver_->Start([events = events_](absl::StatusOr<EndpointList> e) {
        events->Add(std::move(e));
      });
      resolver_.reset();
    }));
    FlushLoop();
    EXPECT_EQ(events_->size(), 0u) << target;
  }
}

TEST_F(DnsNameResolverTest, ListenerMayDestroyTheResolver) {
  options_.dns_refresh_interval = absl::Milliseconds(10);
  options_.dns_min_refresh_interval = absl::ZeroDuration();
  ASSERT_TRUE(server_->SetRecords("svc.test", {"10.0.0.1"}).ok());
  ASSERT_TRUE(Create(Target("svc.test:80")).ok());
  Notification destroyed;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    resolver_->Start([this, &destroyed](absl::StatusOr<EndpointList> e) {
      // The reset destroys this lambda too: copy what is needed after it.
      Notification* done = &destroyed;
      resolver_.reset();
      done->Notify();
    });
  }));
  ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(kWait));
  // No more lookups once it is gone (its refresh timer went with it).
  const int count = server_->QueryCount("svc.test");
  FlushLoop();
  EXPECT_EQ(server_->QueryCount("svc.test"), count);
}

TEST_F(DnsNameResolverTest, NumericHostsNeedNoQuery) {
  ASSERT_TRUE(Create(Target("10.1.2.3:80")).ok());
  EXPECT_EQ(Start(), 0u);
  ASSERT_TRUE(events_->WaitFor(1));
  absl::StatusOr<EndpointList> list = events_->Get(0);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list), (std::vector<std::string>{"10.1.2.3:80"}));

  // IPv6, canonicalized; no DNS server needed at all.
  ASSERT_TRUE(Create("dns:///[0:0::1]:81").ok());
  Start();
  ASSERT_TRUE(events_->WaitFor(2));
  list = events_->Get(1);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list), (std::vector<std::string>{"[::1]:81"}));
  RequestRefresh();
  FlushLoop();
  EXPECT_EQ(events_->size(), 2u);
  EXPECT_EQ(server_->QueryCount("10.1.2.3"), 0);
}

TEST_F(DnsNameResolverTest, RejectsWhatItCannotResolve) {
  absl::Status s = Create("list:///10.0.0.1:80");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  s = Create("dns://dns.example/svc.test:80");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "dns.example")) << s;
  options_.dns_refresh_interval = absl::ZeroDuration();
  s = Create(Target("svc.test:80"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

}  // namespace
}  // namespace bevrpc::naming
