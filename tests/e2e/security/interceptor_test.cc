// Interceptors end to end through the real Server and Channel over
// loopback TCP: every call shape with sync and callback handlers passes
// through the server chain once (start before the handler, end with the
// status the client got); a refusal stops the call before the handler and
// ends only the interceptors that started; client interceptors add headers
// and can refuse before anything is sent; bearer tokens give the handler
// a principal; per-tenant limits refuse one tenant over its limit while
// the other is unaffected.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/auth/bearer_token.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/interceptor.h"
#include "rpc/server.h"
#include "rpc/tenant/tenant_limits.h"
#include "services/echo/echo.bevrpc.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;
using echo::ExpandRequest;

constexpr char kTokenA[] = "token-of-tenant-a-0123456789abcdef";
constexpr char kTokenB[] = "token-of-tenant-b-0123456789abcdef";

// Records what it sees; refuses calls carrying "x-deny".
class Recorder : public ServerInterceptor {
 public:
  explicit Recorder(std::string name) : name_(std::move(name)) {}

  absl::Status OnCallStart(ServerCallInfo& call, std::any& state) override {
    MutexLock lock(&mu_);
    events_.push_back(absl::StrCat(name_, " start ", call.method, " kind ",
                                   static_cast<int>(call.kind)));
    state = std::string(call.method);
    if (const std::string* who = call.header("x-client")) {
      events_.push_back(absl::StrCat(name_, " x-client ", *who));
    }
    if (const std::string* deny = call.header("x-deny");
        deny != nullptr && *deny == name_) {
      return absl::PermissionDeniedError(absl::StrCat(name_, " says no"));
    }
    if (call.principal.empty()) call.principal = "from-" + name_;
    return absl::OkStatus();
  }
  void OnCallEnd(const ServerCallInfo& call, std::any& state,
                 const absl::Status& status, absl::Duration) override {
    MutexLock lock(&mu_);
    // The state is what OnCallStart left in it.
    events_.push_back(absl::StrCat(name_, " end ",
                                   std::any_cast<std::string>(state), " ",
                                   absl::StatusCodeToString(status.code())));
    ended_.Signal();
  }

  // Waits until `n` events are recorded, then returns them (and clears).
  std::vector<std::string> Take(size_t n) {
    MutexLock lock(&mu_);
    ended_.WaitUntil(&mu_, absl::Seconds(30),
                     [&] { return events_.size() >= n; });
    std::vector<std::string> out = std::move(events_);
    events_.clear();
    return out;
  }

 private:
  const std::string name_;
  Mutex mu_;
  CondVar ended_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
};

// Sync-flavour echo whose answers carry the principal.
class SyncEcho : public echo::Echo::Service {
 public:
  std::atomic<int> handled{0};
  absl::Status Echo(ServerContext& ctx, const EchoRequest& request,
                    EchoResponse* response) override {
    handled.fetch_add(1);
    response->set_message(absl::StrCat(request.message(), "|",
                                       ctx.principal()));
    return absl::OkStatus();
  }
  absl::Status Expand(ServerContext& ctx, const ExpandRequest& request,
                      ServerWriter<EchoResponse>& writer) override {
    handled.fetch_add(1);
    EchoResponse r;
    r.set_message(ctx.principal());
    for (uint64_t i = 0; i < request.count(); ++i) {
      absl::Status s = writer.WriteBlocking(r);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  absl::Status Collect(ServerContext& ctx, ServerReader<EchoRequest>& reader,
                       EchoResponse* response) override {
    handled.fetch_add(1);
    EchoRequest m;
    std::string all;
    while (reader.Read(&m)) all += m.message();
    response->set_message(absl::StrCat(all, "|", ctx.principal()));
    return absl::OkStatus();
  }
  absl::Status Chat(
      ServerContext& ctx,
      ServerReaderWriter<EchoRequest, EchoResponse>& stream) override {
    handled.fetch_add(1);
    EchoRequest m;
    while (stream.Read(&m)) {
      EchoResponse r;
      r.set_message(absl::StrCat(m.message(), "|", ctx.principal()));
      absl::Status s = stream.WriteBlocking(r);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
};

// Adds a header, or refuses calls to one method.
class ClientTagger : public ClientInterceptor {
 public:
  std::atomic<int> ended{0};
  absl::StatusCode last_code = absl::StatusCode::kUnknown;
  absl::Status OnCallStart(ClientCallInfo& call, std::any& state) override {
    if (call.method == echo::Echo::kCollectMethod && refuse_collect) {
      return absl::FailedPreconditionError("client-side refusal");
    }
    (*call.metadata)["x-client"] = absl::StrCat("tagged-", call.streaming);
    state = 7;
    return absl::OkStatus();
  }
  void OnCallEnd(const ClientCallInfo& call, std::any& state,
                 const absl::Status& status, absl::Duration) override {
    EXPECT_EQ(std::any_cast<int>(state), 7);
    EXPECT_EQ(call.metadata, nullptr);
    last_code = status.code();
    ended.fetch_add(1);
  }
  bool refuse_collect = false;
};

enum class Flavour { kSync, kCallback };

class InterceptorTest : public ::testing::TestWithParam<Flavour> {
 protected:
  void SetUp() override {
    first_ = std::make_shared<Recorder>("first");
    second_ = std::make_shared<Recorder>("second");
    ServerOptions options;
    options.interceptors = {first_, second_};
    server_ = std::make_unique<Server>(options);
    if (GetParam() == Flavour::kSync) {
      ASSERT_TRUE(server_->RegisterService(&sync_).ok());
    } else {
      ASSERT_TRUE(server_->RegisterService(&callback_).ok());
    }
    ASSERT_TRUE(server_->Start().ok());
    tagger_ = std::make_shared<ClientTagger>();
    ChannelOptions copts;
    copts.interceptors = {tagger_};
    channel_ = Channel::Create(absl::StrCat("127.0.0.1:", server_->port()),
                               copts)
                   .value();
  }

  std::shared_ptr<Recorder> first_, second_;
  SyncEcho sync_;
  echo::EchoService callback_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<ClientTagger> tagger_;
  std::unique_ptr<Channel> channel_;
};

TEST_P(InterceptorTest, UnaryPassesThroughTheChainOnce) {
  echo::Echo::Stub stub(channel_.get());
  EchoRequest req;
  req.set_message("hi");
  absl::StatusOr<EchoResponse> r = stub.Echo(req);
  ASSERT_TRUE(r.ok()) << r.status();
  if (GetParam() == Flavour::kSync) {
    // The principal the first interceptor set reached the handler.
    EXPECT_EQ(r->message(), "hi|from-first");
  }
  EXPECT_EQ(first_->Take(3),
            (std::vector<std::string>{
                "first start bevrpc.echo.Echo/Echo kind 0",
                "first x-client tagged-0",
                "first end bevrpc.echo.Echo/Echo OK"}));
  EXPECT_EQ(tagger_->ended.load(), 1);
  EXPECT_EQ(tagger_->last_code, absl::StatusCode::kOk);
}

TEST_P(InterceptorTest, EveryStreamingShapePassesThroughTheChain) {
  // Server streaming.
  {
    ExpandRequest req;
    req.set_count(3);
    req.set_size(4);
    auto stream = ClientStream<ExpandRequest, EchoResponse>::Open(
        *channel_, echo::Echo::kExpandMethod, MethodKind::kServerStreaming,
        &req);
    EchoResponse m;
    int n = 0;
    while (stream->Read(&m)) ++n;
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_EQ(n, 3);
  }
  // Client streaming.
  {
    auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
        *channel_, echo::Echo::kCollectMethod, MethodKind::kClientStreaming);
    EchoRequest m;
    m.set_message("ab");
    ASSERT_TRUE(stream->WriteBlocking(m).ok());
    ASSERT_TRUE(stream->WriteBlocking(m).ok());
    stream->CloseSend();
    EchoResponse r;
    ASSERT_TRUE(stream->Read(&r));
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_EQ(r.message().substr(0, 4), "abab");
  }
  // Bidirectional.
  {
    auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
        *channel_, echo::Echo::kChatMethod, MethodKind::kBidiStreaming);
    EchoRequest m;
    m.set_message("x");
    ASSERT_TRUE(stream->WriteBlocking(m).ok());
    EchoResponse r;
    ASSERT_TRUE(stream->Read(&r));
    stream->CloseSend();
    while (stream->Read(&r)) {
    }
    EXPECT_TRUE(stream->Finish().ok());
  }
  std::vector<std::string> events = second_->Take(9);
  EXPECT_EQ(events, (std::vector<std::string>{
                        "second start bevrpc.echo.Echo/Expand kind 1",
                        "second x-client tagged-1",
                        "second end bevrpc.echo.Echo/Expand OK",
                        "second start bevrpc.echo.Echo/Collect kind 2",
                        "second x-client tagged-1",
                        "second end bevrpc.echo.Echo/Collect OK",
                        "second start bevrpc.echo.Echo/Chat kind 3",
                        "second x-client tagged-1",
                        "second end bevrpc.echo.Echo/Chat OK"}));
  EXPECT_EQ(tagger_->ended.load(), 3);
}

TEST_P(InterceptorTest, ARefusalStopsTheCallBeforeTheHandler) {
  echo::Echo::Stub stub(channel_.get());
  EchoRequest req;
  req.set_message("hi");
  CallOptions options;
  options.metadata["x-deny"] = "second";
  absl::StatusOr<EchoResponse> r = stub.Echo(req, options);
  EXPECT_EQ(r.status(), absl::PermissionDeniedError("second says no"));
  // The first interceptor started and ends with the refusal; the second
  // refused, so it does not end.
  EXPECT_EQ(first_->Take(3),
            (std::vector<std::string>{
                "first start bevrpc.echo.Echo/Echo kind 0",
                "first x-client tagged-0",
                "first end bevrpc.echo.Echo/Echo PERMISSION_DENIED"}));
  EXPECT_EQ(second_->Take(2),
            (std::vector<std::string>{
                "second start bevrpc.echo.Echo/Echo kind 0",
                "second x-client tagged-0"}));
  EXPECT_EQ(sync_.handled.load(), 0);
  EXPECT_EQ(tagger_->last_code, absl::StatusCode::kPermissionDenied);
  // A refused stream too: the first refuses, nobody ends.
  CallOptions deny_first;
  deny_first.metadata["x-deny"] = "first";
  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, echo::Echo::kChatMethod, MethodKind::kBidiStreaming, nullptr,
      deny_first);
  EchoResponse m;
  EXPECT_FALSE(stream->Read(&m));
  EXPECT_EQ(stream->Finish(), absl::PermissionDeniedError("first says no"));
  EXPECT_EQ(first_->Take(2).size(), 2u);
  EXPECT_EQ(sync_.handled.load(), 0);
}

TEST_P(InterceptorTest, AClientInterceptorCanRefuseBeforeSending) {
  tagger_->refuse_collect = true;
  auto stream = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, echo::Echo::kCollectMethod, MethodKind::kClientStreaming);
  EXPECT_EQ(stream->Finish(),
            absl::FailedPreconditionError("client-side refusal"));
  // Nothing reached the server: a unary call after it is the first event.
  echo::Echo::Stub stub(channel_.get());
  EchoRequest req;
  ASSERT_TRUE(stub.Echo(req).ok());
  std::vector<std::string> events = first_->Take(3);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0], "first start bevrpc.echo.Echo/Echo kind 0");
}

INSTANTIATE_TEST_SUITE_P(Flavours, InterceptorTest,
                         ::testing::Values(Flavour::kSync,
                                           Flavour::kCallback));

// Bearer tokens and tenant limits together, as the server main wires
// them: tenant a is held to 2 calls in flight, tenant b is not limited.
TEST(TenantLimitsEndToEnd, OneTenantOverItsLimitLeavesTheOtherAlone) {
  auto auth = auth::BearerTokenAuth::FromTokens(
      {{"a", kTokenA}, {"b", kTokenB}}, {});
  ASSERT_TRUE(auth.ok());
  tenant::TenantLimitsOptions limits;
  limits.tenants["a"].max_concurrent_calls = 2;
  auto limiter = tenant::TenantLimiter::Create(limits);
  ASSERT_TRUE(limiter.ok());
  ServerOptions options;
  options.interceptors = {*auth, *limiter};
  Server server(options);
  echo::EchoService echo;
  ASSERT_TRUE(server.RegisterService(&echo).ok());
  ASSERT_TRUE(server.Start().ok());
  auto channel =
      Channel::Create(absl::StrCat("127.0.0.1:", server.port())).value();
  echo::Echo::Stub stub(channel.get());

  CallOptions as_a, as_b;
  as_a.metadata["authorization"] = absl::StrCat("Bearer ", kTokenA);
  as_b.metadata["authorization"] = absl::StrCat("Bearer ", kTokenB);
  // Tenant a fills its two places with slow calls (delay_ms holds them).
  EchoRequest slow;
  slow.set_message("slow");
  slow.set_delay_ms(60'000);
  EchoResponse r1, r2;
  Notification d1, d2;
  absl::Status s1, s2;
  CallHandle h1 = stub.EchoAsync(slow, &r1, as_a, [&](absl::Status s) {
    s1 = s;
    d1.Notify();
  });
  CallHandle h2 = stub.EchoAsync(slow, &r2, as_a, [&](absl::Status s) {
    s2 = s;
    d2.Notify();
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((*limiter)->in_flight("a") < 2) {
    ASSERT_LT(absl::Now(), deadline);
    absl::SleepFor(absl::Milliseconds(5));
  }
  EchoRequest fast;
  fast.set_message("fast");
  // A third call of tenant a is refused with a retry hint...
  Metadata trailers;
  absl::StatusOr<EchoResponse> third = stub.Echo(fast, as_a, &trailers);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("tenant a has 2 calls in flight"),
            std::string::npos)
      << third.status();
  EXPECT_EQ(trailers.count("bevrpc-retry-pushback-ms"), 1u);
  // ...while tenant b goes on unaffected.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<EchoResponse> r = stub.Echo(fast, as_b);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Without a token: UNAUTHENTICATED, before any tenant counts it.
  EXPECT_EQ(stub.Echo(fast).status().code(),
            absl::StatusCode::kUnauthenticated);
  // The slow calls end (cancelled): a's places come back.
  channel->Cancel(h1);
  channel->Cancel(h2);
  d1.WaitForNotification();
  d2.WaitForNotification();
  while ((*limiter)->in_flight("a") != 0) {
    ASSERT_LT(absl::Now(), deadline + absl::Seconds(30));
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_TRUE(stub.Echo(fast, as_a).ok());
}

}  // namespace
}  // namespace bevrpc
