// The built-in HTTP pages end to end, through a real Server over loopback
// TCP: HTTP/1.1 on the RPC port next to bevrpc calls, every page, keep-alive
// and pipelining, HEAD, 404, each HttpLimits bound (431, 413, 408, 503),
// /health during a drain, HttpMode::kOff (bad magic, as before) and
// kSeparateAddress (pages on the admin port only).
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/admin/http_page.h"
#include "rpc/method.h"
#include "rpc/metrics/metrics.h"
#include "rpc/server.h"
#include "rpc/wire.pb.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "tests/testing/raw_client.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using ::bevrpc::echo::EchoRequest;
using ::bevrpc::echo::EchoResponse;
using ::bevrpc::testing::DescribeFrame;
using ::bevrpc::testing::EncodeFrame;
using ::bevrpc::testing::Frame;
using ::bevrpc::testing::HttpReply;
using ::bevrpc::testing::RawClient;

constexpr absl::Duration kWait = absl::Seconds(10);

std::string Get(absl::string_view path, absl::string_view extra = "") {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: test\r\n", extra,
                      "\r\n");
}

std::string RequestFrame(uint64_t call_id, absl::string_view method,
                         absl::string_view message) {
  wire::FrameMeta meta;
  meta.set_call_id(call_id);
  meta.set_kind(wire::REQUEST);
  meta.set_method(std::string(method));
  EchoRequest request;
  request.set_message(std::string(message));
  return EncodeFrame(meta, request.SerializeAsString());
}

// One Echo call over `client`; the echoed message or what went wrong.
absl::StatusOr<std::string> EchoOnce(RawClient& client, uint64_t call_id,
                                     absl::string_view message) {
  absl::Status w =
      client.Write(RequestFrame(call_id, "bevrpc.echo.Echo/Echo", message));
  if (!w.ok()) return w;
  absl::StatusOr<Frame> frame = client.ReadFrame(kWait);
  if (!frame.ok()) return frame.status();
  if (frame->meta.kind() != wire::RESPONSE || frame->meta.status_code() != 0) {
    return absl::InternalError(DescribeFrame(*frame));
  }
  EchoResponse response;
  if (!response.ParseFromString(frame->payload)) {
    return absl::DataLossError("EchoResponse does not parse");
  }
  return response.message();
}

// Expects a GOAWAY naming the bad magic, then the close: how a bevrpc port
// answers bytes that are not bevrpc.
void ExpectBadMagicGoaway(RawClient& client) {
  absl::StatusOr<Frame> frame = client.ReadFrame(kWait);
  ASSERT_TRUE(frame.ok()) << frame.status();
  EXPECT_EQ(frame->meta.kind(), wire::GOAWAY) << DescribeFrame(*frame);
  EXPECT_EQ(frame->meta.status_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(absl::StrContains(frame->meta.status_message(), "magic"))
      << frame->meta.status_message();
  EXPECT_TRUE(client.WaitForClose(kWait).ok());
}

class HttpPagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metrics::MetricSpec spec;
    spec.name = "test_requests";
    spec.help = "Requests in the test.";
    auto family = registry_.RegisterCounterFamily(spec);
    ASSERT_TRUE(family.ok());
    (*family)->Get({})->Add(3);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  }

  void StartServer(ServerOptions options = ServerOptions()) {
    options.metrics_registry = &registry_;
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(echo::RegisterEchoService(*server_).ok());
    ASSERT_TRUE(server_
                    ->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.Probe/Block",
                        [this](ServerContext&, const EchoRequest& req,
                               EchoResponse* resp) {
                          block_started_.Notify();
                          release_.WaitForNotificationWithTimeout(
                              absl::Minutes(1));
                          resp->set_message(req.message());
                          return absl::OkStatus();
                        }))
                    .ok());
    ASSERT_TRUE(server_->Start().ok());
  }

  std::unique_ptr<RawClient> Connect(int port = 0) {
    auto client = RawClient::Connect(port == 0 ? server_->port() : port);
    if (!client.ok()) {
      ADD_FAILURE() << client.status();
      return nullptr;
    }
    return *std::move(client);
  }

  // Sends `request` on `client` and reads the response.
  HttpReply Exchange(RawClient& client, const std::string& request,
                     bool head = false) {
    absl::Status w = client.Write(request);
    EXPECT_TRUE(w.ok()) << w;
    absl::StatusOr<HttpReply> reply = client.ReadHttpResponse(kWait, head);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *std::move(reply) : HttpReply();
  }

  metrics::MetricsRegistry registry_;
  std::unique_ptr<Server> server_;
  Notification block_started_;
  Notification release_;
};

TEST_F(HttpPagesTest, MetricsOnTheRpcPort) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  HttpReply reply = Exchange(*http, Get("/metrics"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(absl::StrContains(reply.body, "# TYPE test_requests_total counter\n"))
      << reply.body;
  EXPECT_TRUE(absl::StrContains(reply.body, "\ntest_requests_total 3\n"))
      << reply.body;
  // JSON variant, on the same (keep-alive) connection.
  reply = Exchange(*http, Get("/metrics?format=json"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "application/json");
  EXPECT_TRUE(absl::StrContains(reply.body, "\"name\":\"test_requests_total\""))
      << reply.body;
}

TEST_F(HttpPagesTest, IndexOptionsHeadAnd404AndKeepAlive) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  HttpReply index = Exchange(*http, Get("/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.headers["content-type"], "text/html; charset=utf-8");
  for (const char* page : {"/metrics", "/health", "/options", "/connections"}) {
    EXPECT_TRUE(absl::StrContains(index.body, absl::StrCat("href=\"", page)))
        << page;
  }
  HttpReply options = Exchange(*http, Get("/options"));
  EXPECT_EQ(options.status, 200);
  EXPECT_TRUE(absl::StrContains(options.body, "http = same_port\n"))
      << options.body;
  options = Exchange(*http, Get("/options?format=json"));
  EXPECT_TRUE(absl::StrContains(options.body,
                                "\"http_limits.max_head_bytes\":16384"))
      << options.body;
  // HEAD: the GET's headers and no body; the next response on the same
  // connection parses right after it, so no body bytes were sent.
  HttpReply head =
      Exchange(*http, "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n", true);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], "8");
  EXPECT_EQ(head.body, "");
  HttpReply missing = Exchange(*http, Get("/no/such/page"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers["connection"], "keep-alive");
  HttpReply post = Exchange(
      *http, "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
  HttpReply last = Exchange(*http, Get("/health", "Connection: close\r\n"));
  EXPECT_EQ(last.status, 200);
  EXPECT_EQ(last.headers["connection"], "close");
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
}

TEST_F(HttpPagesTest, PipelinedRequestsAnsweredInOrderAndHttp10Closes) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  ASSERT_TRUE(http->Write(Get("/health") + Get("/nope") +
                          "GET /health HTTP/1.0\r\n\r\n" + Get("/health"))
                  .ok());
  auto first = http->ReadHttpResponse(kWait);
  auto second = http->ReadHttpResponse(kWait);
  auto third = http->ReadHttpResponse(kWait);
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 404);
  EXPECT_EQ(third->status, 200);
  EXPECT_EQ(third->headers["connection"], "close");
  // The request after the HTTP/1.0 one is never answered.
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
}

TEST_F(HttpPagesTest, ConnectionsListsHttpAndRpcConnections) {
  StartServer();
  auto rpc = Connect();
  ASSERT_NE(rpc, nullptr);
  auto echoed = EchoOnce(*rpc, 1, "hello");
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  HttpReply reply = Exchange(*http, Get("/connections?format=json"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_TRUE(absl::StrContains(reply.body, "\"count\":2")) << reply.body;
  EXPECT_TRUE(absl::StrContains(reply.body, "\"protocol\":\"rpc\""))
      << reply.body;
  EXPECT_TRUE(absl::StrContains(reply.body, "\"protocol\":\"http\""))
      << reply.body;
  reply = Exchange(*http, Get("/connections"));
  EXPECT_TRUE(absl::StrContains(reply.body, "2 open connection(s)"))
      << reply.body;
  // The RPC connection keeps working next to the HTTP one.
  echoed = EchoOnce(*rpc, 2, "again");
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, "again");
}

TEST_F(HttpPagesTest, RpcCallsWorkNextToAPartialHttpRequest) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  ASSERT_TRUE(http->Write("GET /hea").ok());
  for (int i = 0; i < 3; ++i) {
    auto rpc = Connect();
    ASSERT_NE(rpc, nullptr);
    auto echoed = EchoOnce(*rpc, 1, absl::StrCat("m", i));
    ASSERT_TRUE(echoed.ok()) << echoed.status();
  }
  ASSERT_TRUE(http->Write("lth HTTP/1.1\r\nHost: t\r\n\r\n").ok());
  auto reply = http->ReadHttpResponse(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->body, "SERVING\n");
}

TEST_F(HttpPagesTest, OversizedHeadIs431AndClosed) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  HttpReply reply = Exchange(
      *http, Get("/health", absl::StrCat("X-Big: ", std::string(20 * 1024, 'a'),
                                         "\r\n")));
  EXPECT_EQ(reply.status, 431);
  EXPECT_TRUE(absl::StrContains(reply.body, "max_head_bytes 16384"))
      << reply.body;
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
}

TEST_F(HttpPagesTest, BodyOverLimitIs413BeforeTheBodyIsSent) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  // Only the head: the answer comes from Content-Length alone.
  HttpReply reply = Exchange(
      *http, "POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n");
  EXPECT_EQ(reply.status, 413);
  EXPECT_TRUE(absl::StrContains(reply.body, "max_body_bytes 1048576"))
      << reply.body;
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
}

TEST_F(HttpPagesTest, MalformedRequestIs400AndClosed) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  HttpReply reply = Exchange(*http, "GET /%zz HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(reply.status, 400);
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
  auto chunked = Connect();
  ASSERT_NE(chunked, nullptr);
  reply = Exchange(*chunked,
                   "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n");
  EXPECT_EQ(reply.status, 411);
  EXPECT_TRUE(chunked->WaitForClose(kWait).ok());
}

TEST_F(HttpPagesTest, SlowRequestClosedAtTheRequestTimeout) {
  ServerOptions options;
  options.http_limits.request_timeout = absl::Milliseconds(300);
  StartServer(options);
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  // Trickled, then stopped: the timeout runs from the first byte, not the
  // last, so trickling does not extend it.
  const absl::Time start = absl::Now();
  for (const char* part : {"GET ", "/hea", "lth HT", "TP/1.1\r\n"}) {
    ASSERT_TRUE(http->Write(part).ok());
    absl::SleepFor(absl::Milliseconds(50));
  }
  auto reply = http->ReadHttpResponse(kWait);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->status, 408);
  // Not before the timeout (less a little: the loop's monotonic clock and
  // absl::Now() differ by a fraction of a millisecond).
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
}

TEST_F(HttpPagesTest, IdleKeepAliveConnectionClosed) {
  ServerOptions options;
  options.http_limits.idle_timeout = absl::Milliseconds(200);
  StartServer(options);
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(Exchange(*http, Get("/health")).status, 200);
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
}

TEST_F(HttpPagesTest, HttpConnectionsOverTheLimitGet503) {
  ServerOptions options;
  options.http_limits.max_connections = 2;
  StartServer(options);
  auto a = Connect();
  auto b = Connect();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(Exchange(*a, Get("/health")).status, 200);
  EXPECT_EQ(Exchange(*b, Get("/health")).status, 200);
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  HttpReply refused = Exchange(*c, Get("/health"));
  EXPECT_EQ(refused.status, 503);
  EXPECT_TRUE(absl::StrContains(refused.body, "max_connections 2"))
      << refused.body;
  EXPECT_TRUE(c->WaitForClose(kWait).ok());
  // RPC connections do not count against it.
  auto rpc = Connect();
  ASSERT_NE(rpc, nullptr);
  EXPECT_TRUE(EchoOnce(*rpc, 1, "x").ok());
  // One HTTP connection closing makes room for another.
  a.reset();
  const absl::Time until = absl::Now() + kWait;
  int status = 0;
  while (absl::Now() < until) {
    auto d = Connect();
    ASSERT_NE(d, nullptr);
    status = Exchange(*d, Get("/health")).status;
    if (status == 200) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(status, 200);
}

TEST_F(HttpPagesTest, HealthIs503WhileDraining) {
  StartServer();
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(Exchange(*http, Get("/health")).status, 200);
  // A call in flight holds the drain open.
  auto rpc = Connect();
  ASSERT_NE(rpc, nullptr);
  ASSERT_TRUE(rpc->Write(RequestFrame(1, "test.Probe/Block", "held")).ok());
  ASSERT_TRUE(block_started_.WaitForNotificationWithTimeout(kWait));
  std::thread stopper([this] { server_->Shutdown(absl::Seconds(30)); });
  const absl::Time until = absl::Now() + kWait;
  while (!server_->draining() && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  HttpReply reply = Exchange(*http, Get("/health"));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.body, "NOT_SERVING (draining)\n");
  reply = Exchange(*http, Get("/health?format=json"));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.body, "{\"status\":\"NOT_SERVING\",\"draining\":true}\n");
  release_.Notify();
  stopper.join();
  // The call finished, then the HTTP connection was closed.
  absl::StatusOr<Frame> response = rpc->ReadFrame(kWait);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(http->WaitForClose(kWait).ok());
  server_.reset();
}

TEST_F(HttpPagesTest, OffModeAnswersHttpAsBadMagic) {
  ServerOptions options;
  options.http = HttpMode::kOff;
  StartServer(options);
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  ASSERT_TRUE(http->Write(Get("/metrics")).ok());
  ExpectBadMagicGoaway(*http);
  auto rpc = Connect();
  ASSERT_NE(rpc, nullptr);
  EXPECT_TRUE(EchoOnce(*rpc, 1, "x").ok());
}

TEST_F(HttpPagesTest, SeparateAddressServesPagesThereOnly) {
  ServerOptions options;
  options.http = HttpMode::kSeparateAddress;
  options.admin_address = "127.0.0.1:0";
  StartServer(options);
  ASSERT_NE(server_->admin_port(), 0);
  EXPECT_NE(server_->admin_port(), server_->port());
  EXPECT_EQ(server_->admin_address(),
            absl::StrCat("127.0.0.1:", server_->admin_port()));
  auto admin = Connect(server_->admin_port());
  ASSERT_NE(admin, nullptr);
  HttpReply reply = Exchange(*admin, Get("/metrics"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_TRUE(absl::StrContains(reply.body, "# TYPE")) << reply.body;
  // Bevrpc bytes on the admin port are just a bad HTTP request.
  auto rpc_on_admin = Connect(server_->admin_port());
  ASSERT_NE(rpc_on_admin, nullptr);
  ASSERT_TRUE(
      rpc_on_admin->Write(RequestFrame(1, "bevrpc.echo.Echo/Echo", "x")).ok());
  auto bad = rpc_on_admin->ReadHttpResponse(kWait);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->status, 400);
  // HTTP on the RPC port gets the bad-magic answer; calls work.
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  ASSERT_TRUE(http->Write(Get("/metrics")).ok());
  ExpectBadMagicGoaway(*http);
  auto rpc = Connect();
  ASSERT_NE(rpc, nullptr);
  EXPECT_TRUE(EchoOnce(*rpc, 1, "x").ok());
}

TEST_F(HttpPagesTest, SeparateAddressNeedsOne) {
  ServerOptions options;
  options.http = HttpMode::kSeparateAddress;
  Server server(options);
  EXPECT_EQ(server.Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpPagesTest, AddHttpPageServesACustomPage) {
  server_ = std::make_unique<Server>();
  ASSERT_TRUE(server_
                  ->AddHttpPage("/hello", "Says hello",
                                [](const admin::HttpRequest& r) {
                                  admin::HttpResponse response;
                                  response.body =
                                      absl::StrCat("hello ", r.query.count("who")
                                                                 ? r.query.at("who")
                                                                 : "world");
                                  return response;
                                })
                  .ok());
  EXPECT_EQ(server_->AddHttpPage("/hello", "Again",
                                 [](const admin::HttpRequest&) {
                                   return admin::HttpResponse();
                                 })
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(server_->AddHttpPage("/metrics", "Mine",
                                 [](const admin::HttpRequest&) {
                                   return admin::HttpResponse();
                                 })
                .code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(server_->Start().ok());
  EXPECT_EQ(server_->AddHttpPage("/late", "Late",
                                 [](const admin::HttpRequest&) {
                                   return admin::HttpResponse();
                                 })
                .code(),
            absl::StatusCode::kFailedPrecondition);
  auto http = Connect();
  ASSERT_NE(http, nullptr);
  HttpReply reply = Exchange(*http, Get("/hello?who=a%20b"));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "hello a b");
  reply = Exchange(*http, Get("/"));
  EXPECT_TRUE(absl::StrContains(reply.body, "Says hello")) << reply.body;
}

}  // namespace
}  // namespace bevrpc
