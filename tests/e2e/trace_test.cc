// Trace context across hops and /rpcz, end to end in one process over
// loopback: client -> server A -> server B, where A's handler calls B with
// CallOptions::From(ctx). Checks the traceparent B sees, what both servers'
// RpczStores hold, and that a caller's (or a malformed) traceparent is
// handled without failing the call.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "rpc/trace/rpcz_page.h"
#include "rpc/trace/rpcz_store.h"
#include "rpc/trace/trace_context.h"
#include "services/echo/echo.pb.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using echo::EchoRequest;
using echo::EchoResponse;
using trace::RpczSample;
using trace::TraceContext;

constexpr absl::Duration kWait = absl::Seconds(20);  // Hang guard only.

// What one handler saw of its call.
struct Seen {
  Mutex mu;
  std::string traceparent ABSL_GUARDED_BY(mu);  // The request header.
  TraceContext trace ABSL_GUARDED_BY(mu);       // ServerContext::trace().

  void Record(const ServerContext& ctx) {
    MutexLock lock(&mu);
    auto it = ctx.metadata().find("traceparent");
    traceparent = it == ctx.metadata().end() ? "" : it->second;
    trace = ctx.trace();
  }
  TraceContext Trace() {
    MutexLock lock(&mu);
    return trace;
  }
  std::string Header() {
    MutexLock lock(&mu);
    return traceparent;
  }
};

// Waits until `server` has stored `n` calls (a call is stored as it ends,
// just after its response went out) and returns them, newest first.
std::vector<RpczSample> WaitForSamples(const Server& server, size_t n) {
  const absl::Time give_up = absl::Now() + kWait;
  while (server.rpcz().recorded() < n && absl::Now() < give_up) {
    std::this_thread::yield();
  }
  return server.rpcz().Snapshot();
}

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    options.rpcz.sample_one_in = 1;  // Follow every call.
    b_ = std::make_unique<Server>(options);
    ASSERT_TRUE(b_->RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.B/Echo",
                        [this](ServerContext& ctx, const EchoRequest& req,
                               EchoResponse* resp) {
                          seen_b_.Record(ctx);
                          resp->set_message(req.message());
                          return absl::OkStatus();
                        }))
                    .ok());
    ASSERT_TRUE(b_->Start().ok());
    auto to_b = Channel::Create(absl::StrCat("127.0.0.1:", b_->port()));
    ASSERT_TRUE(to_b.ok()) << to_b.status();
    to_b_ = *std::move(to_b);

    a_ = std::make_unique<Server>(options);
    // Relays to B, on the incoming call's behalf.
    ASSERT_TRUE(a_->RegisterMethod(CallbackMethod<EchoRequest, EchoResponse>(
                        "test.A/Relay",
                        [this](ServerContext& ctx, const EchoRequest& req,
                               EchoResponse* resp, Completion done) {
                          seen_a_.Record(ctx);
                          auto out = std::make_shared<EchoResponse>();
                          to_b_->CallAsync(
                              "test.B/Echo", req, out.get(),
                              CallOptions::From(ctx),
                              [resp, out, done = std::move(done)](
                                  absl::Status s) mutable {
                                resp->set_message(out->message());
                                std::move(done).Finish(s);
                              });
                        }))
                    .ok());
    ASSERT_TRUE(a_->Start().ok());
    auto client = Channel::Create(absl::StrCat("127.0.0.1:", a_->port()));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    client_.reset();
    if (a_ != nullptr) a_->Shutdown(absl::ZeroDuration());
    a_.reset();
    to_b_.reset();
    b_.reset();
  }

  absl::Status Relay(CallOptions options = {}) {
    EchoRequest req;
    req.set_message("hello");
    EchoResponse resp;
    options.timeout = kWait;
    absl::Status s = client_->Call("test.A/Relay", req, &resp, options);
    if (s.ok()) {
      EXPECT_EQ(resp.message(), "hello");
    }
    return s;
  }

  std::unique_ptr<Server> a_, b_;
  std::unique_ptr<Channel> to_b_, client_;
  Seen seen_a_, seen_b_;
};

TEST_F(TraceTest, FirstHopStartsTheTraceAndHandlersPropagateIt) {
  ASSERT_TRUE(Relay().ok());
  // A plain client call sends no traceparent: A, the first hop, starts the
  // trace.
  EXPECT_EQ(seen_a_.Header(), "");
  const TraceContext a = seen_a_.Trace();
  ASSERT_TRUE(a.valid());
  // B saw the same trace, under a span of A's (its outgoing call).
  absl::StatusOr<TraceContext> from_a = TraceContext::Parse(seen_b_.Header());
  ASSERT_TRUE(from_a.ok()) << seen_b_.Header();
  EXPECT_EQ(from_a->trace_id, a.trace_id);
  const TraceContext b = seen_b_.Trace();
  EXPECT_EQ(b.trace_id, a.trace_id);
  EXPECT_NE(b.span_id, from_a->span_id);

  // A's sample: its span, its caller's, and the call to B with the span B
  // saw as its parent.
  std::vector<RpczSample> at_a = WaitForSamples(*a_, 1);
  ASSERT_EQ(at_a.size(), 1u);
  const RpczSample& sa = at_a[0];
  EXPECT_EQ(sa.method, "test.A/Relay");
  EXPECT_EQ(sa.trace_id, a.trace_id);
  EXPECT_EQ(sa.span_id, a.span_id);
  EXPECT_EQ(sa.parent_span_id, trace::SpanId{});  // A root.
  EXPECT_EQ(sa.code, absl::StatusCode::kOk);
  EXPECT_TRUE(sa.sampled);
  EXPECT_EQ(sa.request_bytes, 7u);   // "hello" with its tag and length.
  EXPECT_EQ(sa.response_bytes, 7u);
  EXPECT_GE(sa.total, sa.handler);
  ASSERT_EQ(sa.downstream.size(), 1u);
  const trace::RpczDownstreamCall& down = sa.downstream[0];
  EXPECT_EQ(down.method, "test.B/Echo");
  EXPECT_EQ(down.target, absl::StrCat("127.0.0.1:", b_->port()));
  EXPECT_EQ(down.span_id, from_a->span_id);
  EXPECT_EQ(down.code, absl::StatusCode::kOk);

  // B's sample names that span as its parent.
  std::vector<RpczSample> at_b = WaitForSamples(*b_, 1);
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].trace_id, a.trace_id);
  EXPECT_EQ(at_b[0].span_id, b.span_id);
  EXPECT_EQ(at_b[0].parent_span_id, down.span_id);
  EXPECT_TRUE(at_b[0].downstream.empty());

  // The page shows A's call and, filtered by the trace, lists the call to
  // B by its span.
  admin::HttpRequest page;
  page.query["trace_id"] = a.TraceIdHex();
  page.query["format"] = "json";
  admin::HttpResponse rendered = trace::RenderRpcz(a_->rpcz(), page);
  EXPECT_EQ(rendered.status, 200);
  EXPECT_NE(rendered.body.find(a.SpanIdHex()), std::string::npos);
  EXPECT_NE(rendered.body.find(trace::ToHex(down.span_id)),
            std::string::npos);
}

TEST_F(TraceTest, KeepsTheCallersTraceparent) {
  const TraceContext mine = TraceContext::NewRoot();
  CallOptions options;
  options.metadata["traceparent"] = mine.Format();
  ASSERT_TRUE(Relay(options).ok());
  EXPECT_EQ(seen_a_.Header(), mine.Format());
  EXPECT_EQ(seen_a_.Trace().trace_id, mine.trace_id);
  EXPECT_EQ(seen_b_.Trace().trace_id, mine.trace_id);
  std::vector<RpczSample> at_a = WaitForSamples(*a_, 1);
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_EQ(at_a[0].parent_span_id, mine.span_id);
}

TEST_F(TraceTest, ASpanInCallOptionsIsTheParent) {
  const TraceContext mine = TraceContext::NewRoot();
  CallOptions options;
  options.trace = mine;
  ASSERT_TRUE(Relay(options).ok());
  absl::StatusOr<TraceContext> sent = TraceContext::Parse(seen_a_.Header());
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->trace_id, mine.trace_id);
  EXPECT_NE(sent->span_id, mine.span_id);
  EXPECT_EQ(seen_b_.Trace().trace_id, mine.trace_id);
}

TEST_F(TraceTest, AMalformedTraceparentStartsANewTraceAndTheCallWorks) {
  const std::string bad[] = {
      "garbage",
      "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
  };
  for (const std::string& value : bad) {
    CallOptions options;
    options.metadata["traceparent"] = value;
    ASSERT_TRUE(Relay(options).ok()) << value;
    EXPECT_EQ(seen_a_.Header(), value);  // Delivered as sent.
    const TraceContext a = seen_a_.Trace();
    EXPECT_TRUE(a.valid());
    // B is in A's new trace.
    EXPECT_EQ(seen_b_.Trace().trace_id, a.trace_id);
  }
  std::vector<RpczSample> at_a = WaitForSamples(*a_, 3);
  ASSERT_EQ(at_a.size(), 3u);
  for (const RpczSample& s : at_a) {
    EXPECT_EQ(s.parent_span_id, trace::SpanId{});  // A root.
    EXPECT_EQ(s.code, absl::StatusCode::kOk);
  }
  EXPECT_NE(at_a[0].trace_id, at_a[1].trace_id);
}

// A server that follows no call still keeps the failed ones; the store
// holds at most max_samples.
TEST(RpczServerTest, KeepsFailedCallsAndStaysBounded) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.rpcz.sample_one_in = 0;
  options.rpcz.max_samples = 4;
  Server server(options);
  ASSERT_TRUE(server.RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.C/Echo",
                        [](ServerContext&, const EchoRequest& req,
                           EchoResponse*) {
                          return req.message() == "fail"
                                     ? absl::NotFoundError("no such thing")
                                     : absl::OkStatus();
                        }))
                  .ok());
  ASSERT_TRUE(server.Start().ok());
  auto client = Channel::Create(absl::StrCat("127.0.0.1:", server.port()));
  ASSERT_TRUE(client.ok());
  EchoRequest req;
  EchoResponse resp;
  CallOptions call;
  call.timeout = kWait;
  req.set_message("ok");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE((*client)->Call("test.C/Echo", req, &resp, call).ok());
  }
  EXPECT_EQ(server.rpcz().recorded(), 0u);
  req.set_message("fail");
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ((*client)->Call("test.C/Echo", req, &resp, call).code(),
              absl::StatusCode::kNotFound);
  }
  std::vector<RpczSample> kept = WaitForSamples(server, 6);
  EXPECT_EQ(server.rpcz().recorded(), 6u);
  ASSERT_EQ(kept.size(), 4u);
  for (const RpczSample& s : kept) {
    EXPECT_EQ(s.code, absl::StatusCode::kNotFound);
    EXPECT_EQ(s.message, "no such thing");
    EXPECT_FALSE(s.sampled);
    EXPECT_TRUE((TraceContext{s.trace_id, s.span_id, 0}.valid()));
  }
  client->reset();
  server.Shutdown(absl::ZeroDuration());
}

TEST(RpczServerTest, OffRecordsNothingButStillTraces) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.rpcz.enabled = false;
  Server server(options);
  Mutex mu;
  TraceContext seen;
  ASSERT_TRUE(server.RegisterMethod(SyncMethod<EchoRequest, EchoResponse>(
                        "test.C/Echo",
                        [&](ServerContext& ctx, const EchoRequest&,
                            EchoResponse*) {
                          MutexLock lock(&mu);
                          seen = ctx.trace();
                          return absl::InternalError("boom");
                        }))
                  .ok());
  ASSERT_TRUE(server.Start().ok());
  auto client = Channel::Create(absl::StrCat("127.0.0.1:", server.port()));
  ASSERT_TRUE(client.ok());
  EchoRequest req;
  EchoResponse resp;
  CallOptions call;
  call.timeout = kWait;
  EXPECT_EQ((*client)->Call("test.C/Echo", req, &resp, call).code(),
            absl::StatusCode::kInternal);
  {
    MutexLock lock(&mu);
    EXPECT_TRUE(seen.valid());
  }
  EXPECT_EQ(server.rpcz().recorded(), 0u);
  client->reset();
  server.Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace bevrpc
