// Tests for DnsResolver against DnsTestServer on 127.0.0.1.
//
// Resolvers are created, used and destroyed on a LoopThread's loop; every
// wait is bounded.
#include "transport/dns.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "transport/event_loop.h"
#include "transport/sync.h"
#include "transport/testing/dns_server.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::transport {
namespace {

using ::bevrpc::transport::testing::DnsTestServer;
using ::bevrpc::transport::testing::LoopThread;

constexpr absl::Duration kWait = absl::Seconds(10);

std::vector<std::string> Strings(const DnsAnswer& answer) {
  std::vector<std::string> out;
  for (const SocketAddress& a : answer.addresses) out.push_back(a.ToString());
  return out;
}

// One answer, delivered from the loop thread to the test thread.
struct Result {
  Notification done;
  absl::StatusOr<DnsAnswer> answer = absl::UnknownError("not answered");
};

class DnsResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<DnsTestServer>> s = DnsTestServer::Start();
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }

  void TearDown() override {
    ASSERT_TRUE(lt_.RunOnLoop([this] { resolver_.reset(); }));
    FlushLoop();
  }

  DnsResolverOptions Options() const {
    DnsResolverOptions o;
    o.nameserver = server_->address();
    return o;
  }

  absl::Status CreateResolver(const DnsResolverOptions& options) {
    absl::Status status;
    EXPECT_TRUE(lt_.RunOnLoop([&] {
      absl::StatusOr<std::unique_ptr<DnsResolver>> r =
          DnsResolver::Create(lt_.loop(), options);
      status = r.status();
      if (r.ok()) resolver_ = *std::move(r);
    }));
    return status;
  }

  // Starts a lookup on the loop; the answer lands in the returned Result.
  // `inline_call` records whether the callback ran inside Resolve().
  std::shared_ptr<Result> StartResolve(const std::string& host, uint16_t port,
                                       DnsResolver::QueryId* id = nullptr,
                                       bool* inline_call = nullptr) {
    auto result = std::make_shared<Result>();
    EXPECT_TRUE(lt_.RunOnLoop([&] {
      DnsResolver::QueryId q = resolver_->Resolve(
          host, port, [result](absl::StatusOr<DnsAnswer> a) {
            result->answer = std::move(a);
            result->done.Notify();
          });
      if (id != nullptr) *id = q;
      if (inline_call != nullptr) *inline_call = result->done.HasBeenNotified();
    }));
    return result;
  }

  absl::StatusOr<DnsAnswer> ResolveAndWait(const std::string& host,
                                           uint16_t port) {
    std::shared_ptr<Result> r = StartResolve(host, port);
    if (!r->done.WaitForNotificationWithTimeout(kWait)) {
      return absl::DeadlineExceededError("test: no answer within 10 s");
    }
    // Moved, not copied: a shared Status rep would be released on either
    // thread by Abseil's uninstrumented refcount, which TSan cannot follow.
    return std::move(r->answer);
  }

  // Returns after the loop has run everything already scheduled, including
  // libevent's deferred callbacks (a zero timer fires behind them).
  void FlushLoop() {
    Notification flushed;
    ASSERT_TRUE(lt_.RunOnLoop([&] {
      auto* timer = new Timer(lt_.loop());
      timer->Start(absl::ZeroDuration(), [timer, &flushed] {
        delete timer;
        flushed.Notify();
      });
    }));
    ASSERT_TRUE(flushed.WaitForNotificationWithTimeout(kWait));
  }

  std::unique_ptr<DnsTestServer> server_;
  LoopThread lt_;
  std::unique_ptr<DnsResolver> resolver_;  // loop thread only
};

TEST_F(DnsResolverTest, IPv4OnlyInAnswerOrderWithTtl) {
  ASSERT_TRUE(server_->SetRecords("v4.test", {"10.0.0.2", "10.0.0.1"}, 42).ok());
  ASSERT_TRUE(CreateResolver(Options()).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("v4.test", 80);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), (std::vector<std::string>{"10.0.0.2:80", "10.0.0.1:80"}));
  EXPECT_EQ(a->min_ttl, absl::Seconds(42));
  // One A and one AAAA question.
  EXPECT_EQ(server_->QueryCount("v4.test"), 2);
}

TEST_F(DnsResolverTest, IPv6Only) {
  ASSERT_TRUE(server_->SetRecords("v6.test", {"fd00::2", "::1"}).ok());
  ASSERT_TRUE(CreateResolver(Options()).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("v6.test", 8080);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a),
            (std::vector<std::string>{"[fd00::2]:8080", "[::1]:8080"}));
}

TEST_F(DnsResolverTest, BothFamiliesIPv4FirstDeduplicatedSmallestTtl) {
  ASSERT_TRUE(server_
                  ->SetRecords("both.test", {"::2", "10.0.0.1", "10.0.0.1",
                                             "::2", "10.0.0.3", "::3"},
                               7)
                  .ok());
  ASSERT_TRUE(CreateResolver(Options()).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("both.test", 443);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a),
            (std::vector<std::string>{"10.0.0.1:443", "10.0.0.3:443",
                                      "[::2]:443", "[::3]:443"}));
  EXPECT_EQ(a->min_ttl, absl::Seconds(7));
}

TEST_F(DnsResolverTest, NamesAreCaseInsensitive) {
  ASSERT_TRUE(server_->SetRecords("mixed.test", {"10.1.1.1"}).ok());
  ASSERT_TRUE(CreateResolver(Options()).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("MiXeD.TeSt", 1);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(Strings(*a), (std::vector<std::string>{"10.1.1.1:1"}));
}

TEST_F(DnsResolverTest, NxdomainIsNotFound) {
  ASSERT_TRUE(CreateResolver(Options()).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("missing.test", 80);
  ASSERT_EQ(a.status().code(), absl::StatusCode::kNotFound) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "\"missing.test\""));
  EXPECT_TRUE(absl::StrContains(a.status().message(), "NXDOMAIN"));
  EXPECT_TRUE(absl::StrContains(a.status().message(), server_->address()));
}

TEST_F(DnsResolverTest, NameWithoutAddressesIsNotFound) {
  ASSERT_TRUE(server_->SetRecords("empty.test", {}).ok());
  ASSERT_TRUE(CreateResolver(Options()).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("empty.test", 80);
  ASSERT_EQ(a.status().code(), absl::StatusCode::kNotFound) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "no A or AAAA records"))
      << a.status();
}

TEST_F(DnsResolverTest, ServfailIsUnavailableAfterTheAttempts) {
  server_->SetServfail("broken.test");
  DnsResolverOptions o = Options();
  o.attempts = 2;
  ASSERT_TRUE(CreateResolver(o).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("broken.test", 80);
  ASSERT_EQ(a.status().code(), absl::StatusCode::kUnavailable) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "SERVFAIL")) << a.status();
  // Each family was sent `attempts` times.
  EXPECT_EQ(server_->QueryCount("broken.test"), 4);
}

TEST_F(DnsResolverTest, NoAnswerTimesOutAsUnavailable) {
  server_->SetNoAnswer("silent.test");
  DnsResolverOptions o = Options();
  o.timeout = absl::Milliseconds(100);
  o.attempts = 3;
  ASSERT_TRUE(CreateResolver(o).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("silent.test", 80);
  ASSERT_EQ(a.status().code(), absl::StatusCode::kUnavailable) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "timed out"))
      << a.status();
  EXPECT_EQ(server_->QueryCount("silent.test"), 6);
}

TEST_F(DnsResolverTest, NoServerOnThePortIsUnavailable) {
  // A port that was free a moment ago: nothing listens there.
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  const int port = SocketAddress::FromSocketName(fd).value().port();
  close(fd);

  DnsResolverOptions o;
  o.nameserver = absl::StrCat("127.0.0.1:", port);
  o.timeout = absl::Milliseconds(200);
  o.attempts = 1;
  ASSERT_TRUE(CreateResolver(o).ok());
  absl::StatusOr<DnsAnswer> a = ResolveAndWait("nobody.test", 80);
  ASSERT_EQ(a.status().code(), absl::StatusCode::kUnavailable) << a.status();
  EXPECT_TRUE(absl::StrContains(a.status().message(), "\"nobody.test\""));
}

TEST_F(DnsResolverTest, NumericHostsNeedNoQueryAndAnswerLater) {
  ASSERT_TRUE(CreateResolver(Options()).ok());
  bool inline_call = true;
  std::shared_ptr<Result> v4 = StartResolve("127.0.0.1", 9, nullptr, &inline_call);
  EXPECT_FALSE(inline_call);
  std::shared_ptr<Result> v6 = StartResolve("::1", 9, nullptr, &inline_call);
  EXPECT_FALSE(inline_call);
  ASSERT_TRUE(v4->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(v6->done.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(v4->answer.ok()) << v4->answer.status();
  ASSERT_TRUE(v6->answer.ok()) << v6->answer.status();
  EXPECT_EQ(Strings(*v4->answer), (std::vector<std::string>{"127.0.0.1:9"}));
  EXPECT_EQ(Strings(*v6->answer), (std::vector<std::string>{"[::1]:9"}));
  EXPECT_EQ(server_->QueryCount("127.0.0.1"), 0);
  EXPECT_EQ(server_->QueryCount("::1"), 0);
}

TEST_F(DnsResolverTest, AnswersNeverInlineFromResolve) {
  ASSERT_TRUE(server_->SetRecords("a.test", {"10.0.0.1"}).ok());
  ASSERT_TRUE(CreateResolver(Options()).ok());
  bool inline_call = true;
  std::shared_ptr<Result> r = StartResolve("a.test", 1, nullptr, &inline_call);
  EXPECT_FALSE(inline_call);
  ASSERT_TRUE(r->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(r->answer.ok()) << r->answer.status();
}

TEST_F(DnsResolverTest, EmptyHostIsInvalidArgumentLater) {
  ASSERT_TRUE(CreateResolver(Options()).ok());
  bool inline_call = true;
  std::shared_ptr<Result> r = StartResolve("", 1, nullptr, &inline_call);
  EXPECT_FALSE(inline_call);
  ASSERT_TRUE(r->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(r->answer.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DnsResolverTest, NameEvdnsCannotEncodeIsInvalidArgumentLater) {
  ASSERT_TRUE(CreateResolver(Options()).ok());
  // A DNS label is at most 63 bytes.
  const std::string host = std::string(70, 'a') + ".test";
  bool inline_call = true;
  std::shared_ptr<Result> r = StartResolve(host, 1, nullptr, &inline_call);
  EXPECT_FALSE(inline_call);
  ASSERT_TRUE(r->done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(r->answer.status().code(), absl::StatusCode::kInvalidArgument)
      << r->answer.status();
  EXPECT_EQ(server_->QueryCount(host), 0);
}

TEST_F(DnsResolverTest, CancelledQueryNeverCallsBackAndResolverStaysUsable) {
  server_->SetNoAnswer("slow.test");
  ASSERT_TRUE(server_->SetRecords("fast.test", {"10.0.0.9"}).ok());
  ASSERT_TRUE(CreateResolver(Options()).ok());
  DnsResolver::QueryId id = 0;
  std::shared_ptr<Result> slow = StartResolve("slow.test", 1, &id);
  // Both questions are at the server: the query is in flight.
  ASSERT_TRUE(server_->WaitForQueryCount("slow.test", 2, kWait));
  bool cancelled = false, again = true;
  size_t pending = 1;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    cancelled = resolver_->Cancel(id);
    again = resolver_->Cancel(id);
    pending = resolver_->pending();
  }));
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(again);
  EXPECT_EQ(pending, 0u);
  FlushLoop();

  absl::StatusOr<DnsAnswer> fast = ResolveAndWait("fast.test", 2);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_EQ(Strings(*fast), (std::vector<std::string>{"10.0.0.9:2"}));
  EXPECT_FALSE(slow->done.HasBeenNotified());
}

TEST_F(DnsResolverTest, CancelNumericHostBeforeItsAnswer) {
  ASSERT_TRUE(CreateResolver(Options()).ok());
  auto result = std::make_shared<Result>();
  bool cancelled = false;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    DnsResolver::QueryId id = resolver_->Resolve(
        "10.0.0.1", 1, [result](absl::StatusOr<DnsAnswer> a) {
          result->done.Notify();
        });
    cancelled = resolver_->Cancel(id);
  }));
  EXPECT_TRUE(cancelled);
  FlushLoop();
  EXPECT_FALSE(result->done.HasBeenNotified());
}

TEST_F(DnsResolverTest, DestroyedWithQueriesInFlightNeverCallsBack) {
  server_->SetNoAnswer("slow.test");
  ASSERT_TRUE(CreateResolver(Options()).ok());
  std::shared_ptr<Result> slow = StartResolve("slow.test", 1);
  ASSERT_TRUE(server_->WaitForQueryCount("slow.test", 2, kWait));
  // A numeric answer is already posted when the resolver goes away.
  auto numeric = std::make_shared<Result>();
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    resolver_->Resolve("10.0.0.1", 1, [numeric](absl::StatusOr<DnsAnswer>) {
      numeric->done.Notify();
    });
    resolver_.reset();
  }));
  FlushLoop();
  EXPECT_FALSE(slow->done.HasBeenNotified());
  EXPECT_FALSE(numeric->done.HasBeenNotified());
}

TEST_F(DnsResolverTest, CallbackMayDestroyTheResolver) {
  ASSERT_TRUE(server_->SetRecords("a.test", {"10.0.0.1"}).ok());
  server_->SetNoAnswer("slow.test");
  ASSERT_TRUE(CreateResolver(Options()).ok());
  std::shared_ptr<Result> slow = StartResolve("slow.test", 1);
  Notification destroyed;
  ASSERT_TRUE(lt_.RunOnLoop([&] {
    resolver_->Resolve("a.test", 1, [&](absl::StatusOr<DnsAnswer> a) {
      resolver_.reset();
      destroyed.Notify();
    });
  }));
  ASSERT_TRUE(destroyed.WaitForNotificationWithTimeout(kWait));
  FlushLoop();
  EXPECT_FALSE(slow->done.HasBeenNotified());
}

TEST_F(DnsResolverTest, RejectsBadOptions) {
  DnsResolverOptions o = Options();
  o.nameserver = "dns.example:53";
  absl::Status s = CreateResolver(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "dns.example:53")) << s;
  o = Options();
  o.attempts = 0;
  EXPECT_EQ(CreateResolver(o).code(), absl::StatusCode::kInvalidArgument);
  o = Options();
  o.timeout = absl::ZeroDuration();
  EXPECT_EQ(CreateResolver(o).code(), absl::StatusCode::kInvalidArgument);
}

// EVDNS_BASE_DISABLE_WHEN_INACTIVE: once its lookups are answered, the
// resolver leaves nothing pending, so a plain event_base_dispatch returns.
TEST(DnsResolverIdleTest, IdleResolverDoesNotKeepTheLoopBusy) {
  std::unique_ptr<DnsTestServer> server = DnsTestServer::Start().value();
  ASSERT_TRUE(server->SetRecords("a.test", {"10.0.0.1"}).ok());
  std::unique_ptr<EventLoop> loop = EventLoop::Create().value();
  DnsResolverOptions o;
  o.nameserver = server->address();
  std::unique_ptr<DnsResolver> resolver =
      DnsResolver::Create(loop.get(), o).value();
  absl::StatusOr<DnsAnswer> answer = absl::UnknownError("not answered");
  resolver->Resolve("a.test", 1, [&](absl::StatusOr<DnsAnswer> a) {
    answer = std::move(a);
  });

  Notification returned;
  std::thread watchdog([&] {
    if (!returned.WaitForNotificationWithTimeout(kWait)) {
      event_base_loopbreak(loop->base());
    }
  });
  event_base_dispatch(loop->base());
  const bool broken = event_base_got_break(loop->base());
  returned.Notify();
  watchdog.join();
  EXPECT_FALSE(broken) << "the loop stayed busy after the answer";
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(Strings(*answer), (std::vector<std::string>{"10.0.0.1:1"}));
}

}  // namespace
}  // namespace bevrpc::transport
