#include "rpc/trace/rpcz_page.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace bevrpc::trace {
namespace {

class RpczPageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = TraceContext::NewRoot();
    b_ = TraceContext::NewRoot();
    Add(a_, "bevrpc.echo.Echo/Echo", absl::StatusCode::kOk, "");
    Add(b_, "bevrpc.kv.Kv/Get", absl::StatusCode::kNotFound,
        "no key <\"k\">");
  }

  void Add(const TraceContext& trace, const std::string& method,
           absl::StatusCode code, const std::string& message) {
    std::shared_ptr<RpczRecord> r = store_.NewRecord();
    RpczSample& s = r->sample();
    s.trace_id = trace.trace_id;
    s.span_id = trace.span_id;
    s.parent_span_id = parent_.span_id;
    s.method = method;
    s.peer = "127.0.0.1:5555";
    s.start = absl::FromUnixSeconds(1700000000);
    s.queued = absl::Microseconds(12);
    s.handler = absl::Microseconds(340);
    s.total = absl::Microseconds(360);
    s.request_bytes = 10;
    s.response_bytes = 12;
    s.code = code;
    s.message = message;
    RpczDownstreamCall d;
    d.method = "bevrpc.kv.Kv/Put";
    d.target = "list:///127.0.0.1:1";
    d.span_id = downstream_.span_id;
    d.duration = absl::Microseconds(200);
    r->AddDownstream(d);
    store_.Add(r);
  }

  admin::HttpResponse Get(std::map<std::string, std::string> query) {
    admin::HttpRequest request;
    request.method = "GET";
    request.path = "/rpcz";
    request.query = std::move(query);
    return RenderRpcz(store_, request);
  }

  RpczStore store_;
  TraceContext a_, b_;
  TraceContext parent_ = TraceContext::NewRoot();
  TraceContext downstream_ = TraceContext::NewRoot();
};

TEST_F(RpczPageTest, HtmlListsCallsWithIdsAndEscapesText) {
  admin::HttpResponse r = Get({});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(absl::StrContains(r.body, "<table>"));
  EXPECT_TRUE(absl::StrContains(r.body, a_.TraceIdHex()));
  EXPECT_TRUE(absl::StrContains(r.body, b_.TraceIdHex()));
  EXPECT_TRUE(absl::StrContains(r.body, a_.SpanIdHex()));
  EXPECT_TRUE(absl::StrContains(r.body, parent_.SpanIdHex()));
  EXPECT_TRUE(absl::StrContains(r.body, downstream_.SpanIdHex()));
  EXPECT_TRUE(absl::StrContains(r.body, "bevrpc.kv.Kv/Put"));
  EXPECT_TRUE(absl::StrContains(r.body, "NOT_FOUND: no key &lt;&quot;k&quot;&gt;"));
  EXPECT_FALSE(absl::StrContains(r.body, "<\"k\">"));
  EXPECT_FALSE(absl::StrContains(r.body, "<script"));
  // Newest first.
  EXPECT_LT(r.body.find(b_.TraceIdHex()), r.body.find(a_.TraceIdHex()));
}

TEST_F(RpczPageTest, JsonHasEveryField) {
  admin::HttpResponse r = Get({{"format", "json"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(absl::StartsWith(r.body, "{\"enabled\":true,\"recorded\":2,"));
  for (const std::string& needle :
       {"\"trace_id\":\"" + a_.TraceIdHex() + "\"",
        "\"span_id\":\"" + a_.SpanIdHex() + "\"",
        "\"parent_span_id\":\"" + parent_.SpanIdHex() + "\"",
        std::string("\"method\":\"bevrpc.echo.Echo/Echo\""),
        std::string("\"peer\":\"127.0.0.1:5555\""),
        std::string("\"start\":\"2023-11-14T22:13:20.000000Z\""),
        std::string("\"queued_us\":12,\"handler_us\":340,\"total_us\":360"),
        std::string("\"request_bytes\":10,\"response_bytes\":12"),
        std::string("\"code\":\"NOT_FOUND\",\"message\":\"no key <\\\"k\\\">\""),
        "\"downstream\":[{\"method\":\"bevrpc.kv.Kv/Put\",\"target\":"
        "\"list:///127.0.0.1:1\",\"span_id\":\"" +
            downstream_.SpanIdHex() + "\""}) {
    EXPECT_TRUE(absl::StrContains(r.body, needle)) << needle << "\n" << r.body;
  }
}

TEST_F(RpczPageTest, FiltersByTraceId) {
  admin::HttpResponse r =
      Get({{"format", "json"}, {"trace_id", a_.TraceIdHex()}});
  EXPECT_TRUE(absl::StrContains(r.body, a_.TraceIdHex()));
  EXPECT_FALSE(absl::StrContains(r.body, b_.TraceIdHex()));
  admin::HttpResponse html = Get({{"trace_id", b_.TraceIdHex()}});
  EXPECT_TRUE(absl::StrContains(html.body, b_.TraceIdHex()));
  EXPECT_FALSE(absl::StrContains(html.body, a_.TraceIdHex()));
}

TEST_F(RpczPageTest, BadTraceIdIs400) {
  admin::HttpResponse r = Get({{"trace_id", "XYZ"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(absl::StrContains(r.body, "trace_id must be 32"));
}

TEST_F(RpczPageTest, AcceptHeaderAsksForJson) {
  admin::HttpRequest request;
  request.path = "/rpcz";
  request.headers["accept"] = "application/json";
  EXPECT_EQ(RenderRpcz(store_, request).content_type, "application/json");
}

}  // namespace
}  // namespace bevrpc::trace
