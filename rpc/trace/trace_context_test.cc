#include "rpc/trace/trace_context.h"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace bevrpc::trace {
namespace {

// The W3C specification's own example.
constexpr char kExample[] =
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

TEST(TraceContextTest, ParsesAndFormatsTheSpecExample) {
  absl::StatusOr<TraceContext> ctx = TraceContext::Parse(kExample);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ(ctx->TraceIdHex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(ctx->SpanIdHex(), "b7ad6b7169203331");
  EXPECT_EQ(ctx->flags, 0x01);
  EXPECT_TRUE(ctx->valid());
  EXPECT_EQ(ctx->Format(), kExample);
}

TEST(TraceContextTest, RejectsMalformedVersion00Values) {
  const std::string good = kExample;
  std::vector<std::string> bad = {
      "",
      good.substr(0, 54),                                     // short
      good + "-",                                             // 00 with extra
      good + "-extra",                                        // 00 with extra
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  // upper
      "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",  // upper
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0A",  // upper
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",  // zero trace
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  // zero span
      "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // separator
      "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331_01",
      "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",  // not hex
      "0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // version ff
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01x",
  };
  for (const std::string& value : bad) {
    absl::StatusOr<TraceContext> ctx = TraceContext::Parse(value);
    EXPECT_FALSE(ctx.ok()) << "accepted \"" << value << "\"";
    if (!ctx.ok()) {
      EXPECT_EQ(ctx.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(TraceContextTest, ReadsFutureVersionsAsVersion00) {
  const std::string body =
      "-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  // Same length, or more fields after a '-': read; forwarded as 00.
  for (const std::string& value :
       {"01" + body, "cc" + body, "01" + body + "-what-ever"}) {
    absl::StatusOr<TraceContext> ctx = TraceContext::Parse(value);
    ASSERT_TRUE(ctx.ok()) << value << ": " << ctx.status();
    EXPECT_EQ(ctx->Format(), kExample);
  }
  // Trailing data not after a '-' is not a valid future format.
  EXPECT_FALSE(TraceContext::Parse("01" + body + "x").ok());
  // Future versions still follow the field rules.
  EXPECT_FALSE(TraceContext::Parse(
                   "01-00000000000000000000000000000000-b7ad6b7169203331-01")
                   .ok());
}

TEST(TraceContextTest, KeepsUnknownFlagsWhenParsedButChildPassesOnlySampled) {
  absl::StatusOr<TraceContext> ctx = TraceContext::Parse(
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff");
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->flags, 0xff);
  EXPECT_EQ(ctx->Child().flags, TraceContext::kSampled);
  ctx->flags = 0;
  EXPECT_EQ(ctx->Child().flags, 0);
}

TEST(TraceContextTest, ChildKeepsTheTraceWithANewSpan) {
  TraceContext root = TraceContext::NewRoot();
  ASSERT_TRUE(root.valid());
  EXPECT_EQ(root.flags, TraceContext::kSampled);
  TraceContext child = root.Child();
  EXPECT_TRUE(child.valid());
  EXPECT_EQ(child.trace_id, root.trace_id);
  EXPECT_NE(child.span_id, root.span_id);
  absl::StatusOr<TraceContext> back = TraceContext::Parse(child.Format());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, child);
}

TEST(TraceContextTest, ChildOfNothingIsANewRoot) {
  TraceContext none;
  EXPECT_FALSE(none.valid());
  TraceContext child = none.Child();
  EXPECT_TRUE(child.valid());
}

TEST(TraceContextTest, RootsDifferAcrossCallsAndThreads) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    seen.insert(TraceContext::NewRoot().TraceIdHex());
  }
  std::vector<std::string> others(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back(
        [&others, t] { others[t] = TraceContext::NewRoot().TraceIdHex(); });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& id : others) seen.insert(id);
  EXPECT_EQ(seen.size(), 1004u);
}

TEST(TraceContextTest, HexHelpersRoundTrip) {
  SpanId span;
  ASSERT_TRUE(ParseHex("b7ad6b7169203331", &span));
  EXPECT_EQ(ToHex(span), "b7ad6b7169203331");
  EXPECT_FALSE(ParseHex("B7AD6B7169203331", &span));
  EXPECT_FALSE(ParseHex("b7ad6b716920333", &span));
  TraceId trace;
  EXPECT_TRUE(ParseHex("0af7651916cd43dd8448eb211c80319c", &trace));
  EXPECT_FALSE(ParseHex("0af7651916cd43dd8448eb211c80319", &trace));
}

}  // namespace
}  // namespace bevrpc::trace
