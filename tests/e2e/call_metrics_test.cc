// Call metrics end to end: a Server with the echo service and a Channel,
// each recording into a MetricsRegistry of its own, make unary calls (OK,
// NOT_FOUND, an unknown method, a retried UNAVAILABLE) and streaming calls,
// and the registries hold exactly what happened: started, handled by code,
// in flight back to 0, latency histogram counts, payload bytes, stream
// messages, retries, the endpoint's series; with enable_metrics off,
// nothing at all.
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/metrics/metrics.h"
#include "rpc/server.h"
#include "services/echo/echo.bevrpc.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;
using echo::ExpandRequest;
using metrics::MetricsRegistry;
using metrics::RegistrySnapshot;

constexpr char kService[] = "bevrpc.echo.Echo";

// The value of one counter or gauge series (exported name), or -1 if the
// series does not exist.
double Value(const MetricsRegistry& registry, absl::string_view name,
             std::vector<std::string> labels) {
  RegistrySnapshot snap = registry.Collect();
  const metrics::FamilySnapshot* family = snap.Find(name);
  if (family == nullptr) return -1;
  const metrics::SeriesSnapshot* series = family->FindSeries(labels);
  return series == nullptr ? -1 : series->value;
}

// A histogram series' count, or -1.
double Count(const MetricsRegistry& registry, absl::string_view name,
             std::vector<std::string> labels) {
  RegistrySnapshot snap = registry.Collect();
  const metrics::FamilySnapshot* family = snap.Find(name);
  if (family == nullptr) return -1;
  const metrics::SeriesSnapshot* series = family->FindSeries(labels);
  return series == nullptr ? -1
                           : static_cast<double>(series->histogram.count);
}

// The server records a call's end right after queuing its RESPONSE, so the
// client may see the answer a moment before: wait (bounded) for the value.
bool WaitForValue(const MetricsRegistry& registry, absl::string_view name,
                  std::vector<std::string> labels, double want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Value(registry, name, labels) != want) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class CallMetricsTest : public ::testing::Test {
 protected:
  void Start(bool enable_metrics = true) {
    ServerOptions so;
    so.listen_address = "127.0.0.1:0";
    so.metrics_registry = &server_registry_;
    so.enable_metrics = enable_metrics;
    server_ = std::make_unique<Server>(so);
    ASSERT_TRUE(server_->RegisterService(&echo_).ok());
    ASSERT_TRUE(server_->Start().ok());
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    ChannelOptions co;
    co.metrics_registry = &client_registry_;
    co.enable_metrics = enable_metrics;
    auto channel = Channel::Create(address_, co);
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *std::move(channel);
  }
  void TearDown() override {
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  absl::Status Echo(const std::string& message, int fail_code = 0,
                    const std::string& method = echo::kEchoMethod) {
    EchoRequest req;
    req.set_message(message);
    req.set_fail_code(fail_code);
    EchoResponse resp;
    CallOptions options;
    options.timeout = absl::Seconds(20);
    return channel_->Call(method, req, &resp, options);
  }

  // Declared first: destroyed after the server and channel using them.
  MetricsRegistry server_registry_;
  MetricsRegistry client_registry_;
  echo::EchoService echo_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  std::string address_;
};

TEST_F(CallMetricsTest, UnaryCallsOnBothSides) {
  Start();
  EchoRequest sample;
  sample.set_message("hello");
  const double request_bytes = sample.ByteSizeLong();   // OK calls
  EchoResponse sample_resp;
  sample_resp.set_message("hello");
  const double response_bytes = sample_resp.ByteSizeLong();
  EchoRequest failing;
  failing.set_message("hello");
  failing.set_fail_code(static_cast<int>(absl::StatusCode::kNotFound));
  const double failing_bytes = failing.ByteSizeLong();

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Echo("hello").ok());
  EXPECT_EQ(Echo("hello", static_cast<int>(absl::StatusCode::kNotFound))
                .code(),
            absl::StatusCode::kNotFound);

  const std::vector<std::string> m = {kService, "Echo"};
  const MetricsRegistry& s = server_registry_;
  ASSERT_TRUE(WaitForValue(s, "bevrpc_server_handled_total",
                           {kService, "Echo", "NOT_FOUND"}, 1));
  ASSERT_TRUE(WaitForValue(s, "bevrpc_server_in_flight", m, 0));
  EXPECT_EQ(Value(s, "bevrpc_server_started_total", m), 4);
  EXPECT_EQ(Value(s, "bevrpc_server_handled_total", {kService, "Echo", "OK"}),
            3);
  EXPECT_EQ(Count(s, "bevrpc_server_handling_seconds", m), 4);
  EXPECT_EQ(Value(s, "bevrpc_server_received_bytes_total", m),
            3 * request_bytes + failing_bytes);
  EXPECT_EQ(Value(s, "bevrpc_server_sent_bytes_total", m), 3 * response_bytes);
  EXPECT_EQ(Value(s, "bevrpc_server_stream_messages_sent_total", m), 0);
  // Only codes that happened have a series.
  EXPECT_EQ(Value(s, "bevrpc_server_handled_total",
                  {kService, "Echo", "UNAVAILABLE"}),
            -1);
  // Server-wide and process series are there.
  EXPECT_EQ(Value(s, "bevrpc_server_connections", {}), 1);
  EXPECT_EQ(Value(s, "bevrpc_server_calls_queued", {}), 0);
  EXPECT_GE(Value(s, "bevrpc_server_worker_threads", {"idle"}), 1);
  EXPECT_EQ(Value(s, "bevrpc_server_memory_limit_bytes", {}),
            static_cast<double>(ServerOptions().max_server_memory_bytes));
  EXPECT_GT(Value(s, "process_open_fds", {}), 0);
  EXPECT_EQ(Value(s, "bevrpc_server_rate_limited_read_bytes_total", {}), 0);

  // The client records before the callback runs: exact at once.
  const MetricsRegistry& c = client_registry_;
  EXPECT_EQ(Value(c, "bevrpc_client_started_total", m), 4);
  EXPECT_EQ(Value(c, "bevrpc_client_handled_total", {kService, "Echo", "OK"}),
            3);
  EXPECT_EQ(
      Value(c, "bevrpc_client_handled_total", {kService, "Echo", "NOT_FOUND"}),
      1);
  EXPECT_EQ(Value(c, "bevrpc_client_in_flight", m), 0);
  EXPECT_EQ(Count(c, "bevrpc_client_handling_seconds", m), 4);
  EXPECT_EQ(Value(c, "bevrpc_client_sent_bytes_total", m),
            3 * request_bytes + failing_bytes);
  EXPECT_EQ(Value(c, "bevrpc_client_received_bytes_total", m),
            3 * response_bytes);
  EXPECT_EQ(Value(c, "bevrpc_client_retries_total", m), 0);
  EXPECT_EQ(Value(c, "bevrpc_client_hedges_total", m), 0);
  const std::vector<std::string> ep = {address_, address_};
  EXPECT_EQ(Value(c, "bevrpc_client_endpoint_in_flight", ep), 0);
  EXPECT_EQ(Value(c, "bevrpc_client_endpoint_errors_total", ep), 1);
  EXPECT_EQ(Value(c, "bevrpc_client_endpoint_ejections_total", ep), 0);
  EXPECT_EQ(
      Value(c, "bevrpc_client_endpoint_state", {address_, address_, "READY"}),
      1);
  EXPECT_EQ(
      Value(c, "bevrpc_client_endpoint_state", {address_, address_, "IDLE"}),
      0);
  // Not the server's registry, nor the client's the server's.
  EXPECT_EQ(Value(c, "bevrpc_server_started_total", m), -1);
  EXPECT_EQ(Value(s, "bevrpc_client_started_total", m), -1);
}

TEST_F(CallMetricsTest, UnknownMethodsShareOneSeries) {
  Start();
  for (const char* method :
       {"bevrpc.echo.Echo/Nope", "no.Such/Thing", "garbage-without-slash"}) {
    EXPECT_EQ(Echo("x", 0, method).code(), absl::StatusCode::kUnimplemented)
        << method;
  }
  const MetricsRegistry& s = server_registry_;
  const std::vector<std::string> unknown = {"__unknown__", "__unknown__"};
  ASSERT_TRUE(WaitForValue(s, "bevrpc_server_handled_total",
                           {"__unknown__", "__unknown__", "UNIMPLEMENTED"}, 3));
  EXPECT_EQ(Value(s, "bevrpc_server_started_total", unknown), 3);
  EXPECT_EQ(Count(s, "bevrpc_server_handling_seconds", unknown), 3);
  EXPECT_EQ(Value(s, "bevrpc_server_in_flight", unknown), 0);
  EXPECT_EQ(Value(s, "bevrpc_server_started_total", {"no.Such", "Thing"}), -1);
  // The client names what its code called.
  EXPECT_EQ(Value(client_registry_, "bevrpc_client_handled_total",
                  {"no.Such", "Thing", "UNIMPLEMENTED"}),
            1);
}

TEST_F(CallMetricsTest, StreamMessagesAreCounted) {
  Start();
  ExpandRequest req;
  req.set_count(5);
  req.set_size(10);
  auto expand = ClientStream<ExpandRequest, EchoResponse>::Open(
      *channel_, echo::Echo::kExpandMethod, MethodKind::kServerStreaming,
      &req);
  EchoResponse msg;
  int got = 0;
  while (expand->Read(&msg)) ++got;
  ASSERT_TRUE(expand->Finish().ok());
  ASSERT_EQ(got, 5);
  const double msg_bytes = msg.ByteSizeLong();

  auto collect = ClientStream<EchoRequest, EchoResponse>::Open(
      *channel_, echo::Echo::kCollectMethod, MethodKind::kClientStreaming);
  EchoRequest part;
  part.set_message("abc");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(collect->WriteBlocking(part).ok());
  collect->CloseSend();
  EchoResponse collected;
  ASSERT_TRUE(collect->Read(&collected));
  ASSERT_TRUE(collect->Finish().ok());

  const MetricsRegistry& s = server_registry_;
  const std::vector<std::string> ex = {kService, "Expand"};
  const std::vector<std::string> co = {kService, "Collect"};
  ASSERT_TRUE(WaitForValue(s, "bevrpc_server_handled_total",
                           {kService, "Expand", "OK"}, 1));
  ASSERT_TRUE(WaitForValue(s, "bevrpc_server_handled_total",
                           {kService, "Collect", "OK"}, 1));
  EXPECT_EQ(Value(s, "bevrpc_server_started_total", ex), 1);
  EXPECT_EQ(Value(s, "bevrpc_server_in_flight", ex), 0);
  EXPECT_EQ(Value(s, "bevrpc_server_stream_messages_sent_total", ex), 5);
  EXPECT_EQ(Value(s, "bevrpc_server_stream_messages_received_total", ex), 0);
  EXPECT_EQ(Value(s, "bevrpc_server_sent_bytes_total", ex), 5 * msg_bytes);
  EXPECT_EQ(Value(s, "bevrpc_server_received_bytes_total", ex),
            req.ByteSizeLong());
  EXPECT_EQ(Value(s, "bevrpc_server_stream_messages_received_total", co), 3);
  EXPECT_EQ(Value(s, "bevrpc_server_received_bytes_total", co),
            3 * part.ByteSizeLong());
  EXPECT_EQ(Value(s, "bevrpc_server_sent_bytes_total", co),
            collected.ByteSizeLong());
  EXPECT_EQ(Count(s, "bevrpc_server_handling_seconds", co), 1);

  const MetricsRegistry& c = client_registry_;
  EXPECT_EQ(Value(c, "bevrpc_client_started_total", ex), 1);
  EXPECT_EQ(Value(c, "bevrpc_client_handled_total", {kService, "Expand", "OK"}),
            1);
  EXPECT_EQ(Value(c, "bevrpc_client_in_flight", ex), 0);
  EXPECT_EQ(Value(c, "bevrpc_client_stream_messages_received_total", ex), 5);
  EXPECT_EQ(Value(c, "bevrpc_client_received_bytes_total", ex), 5 * msg_bytes);
  EXPECT_EQ(Value(c, "bevrpc_client_stream_messages_sent_total", co), 3);
  EXPECT_EQ(Value(c, "bevrpc_client_sent_bytes_total", co),
            3 * part.ByteSizeLong());
  EXPECT_EQ(Value(c, "bevrpc_client_handled_total",
                  {kService, "Collect", "OK"}),
            1);
}

TEST_F(CallMetricsTest, RetriesCountOnceAsACallAndEachAsAnAttempt) {
  Start();
  // Echo is IDEMPOTENT: UNAVAILABLE is retried, 3 attempts in all.
  EXPECT_EQ(Echo("r", static_cast<int>(absl::StatusCode::kUnavailable)).code(),
            absl::StatusCode::kUnavailable);
  const std::vector<std::string> m = {kService, "Echo"};
  const MetricsRegistry& c = client_registry_;
  EXPECT_EQ(Value(c, "bevrpc_client_started_total", m), 1);
  EXPECT_EQ(Value(c, "bevrpc_client_retries_total", m), 2);
  EXPECT_EQ(Value(c, "bevrpc_client_handled_total",
                  {kService, "Echo", "UNAVAILABLE"}),
            1);
  EXPECT_EQ(Count(c, "bevrpc_client_handling_seconds", m), 1);
  EXPECT_EQ(Value(c, "bevrpc_client_in_flight", m), 0);
  const std::vector<std::string> ep = {address_, address_};
  EXPECT_EQ(Value(c, "bevrpc_client_endpoint_errors_total", ep), 3);
  EXPECT_EQ(Value(c, "bevrpc_client_endpoint_in_flight", ep), 0);
  // The server saw three calls.
  EXPECT_TRUE(WaitForValue(server_registry_, "bevrpc_server_handled_total",
                           {kService, "Echo", "UNAVAILABLE"}, 3));
  EXPECT_EQ(Value(server_registry_, "bevrpc_server_started_total", m), 3);
}

TEST_F(CallMetricsTest, MetricsOffRecordsNothing) {
  Start(/*enable_metrics=*/false);
  ASSERT_TRUE(Echo("hello").ok());
  EXPECT_EQ(Echo("x", 0, "no.Such/Thing").code(),
            absl::StatusCode::kUnimplemented);
  // Only the process metrics (computed when read, nothing per call).
  for (const auto& family : server_registry_.Collect().families) {
    EXPECT_TRUE(absl::StartsWith(family.name, "process_") ||
                family.name == "bevrpc_build_info")
        << family.name;
  }
  EXPECT_TRUE(client_registry_.Collect().families.empty());
}

TEST(CallMetricsSharedRegistryTest, ServersSharingARegistrySumTheirLevels) {
  MetricsRegistry registry;
  echo::EchoService echo;
  ServerOptions so;
  so.listen_address = "127.0.0.1:0";
  so.metrics_registry = &registry;
  so.max_server_memory_bytes = 1000000;
  auto a = std::make_unique<Server>(so);
  auto b = std::make_unique<Server>(so);
  ASSERT_TRUE(a->RegisterService(&echo).ok());
  ASSERT_TRUE(b->RegisterService(&echo).ok());
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(b->Start().ok());
  EXPECT_EQ(Value(registry, "bevrpc_server_memory_limit_bytes", {}), 2000000);
  a->Shutdown(absl::Seconds(1));
  a.reset();
  EXPECT_EQ(Value(registry, "bevrpc_server_memory_limit_bytes", {}), 1000000);
  b->Shutdown(absl::Seconds(1));
  b.reset();
  // The last server took the server-wide series with it.
  EXPECT_EQ(Value(registry, "bevrpc_server_memory_limit_bytes", {}), -1);
  // A new server on the same registry brings them back.
  Server c(so);
  ASSERT_TRUE(c.RegisterService(&echo).ok());
  ASSERT_TRUE(c.Start().ok());
  EXPECT_EQ(Value(registry, "bevrpc_server_memory_limit_bytes", {}), 1000000);
  c.Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace bevrpc
