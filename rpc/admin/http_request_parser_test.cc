#include "rpc/admin/http_request_parser.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bevrpc::admin {
namespace {

using State = HttpRequestParser::State;

HttpLimits SmallLimits() {
  HttpLimits limits;
  limits.max_head_bytes = 256;
  limits.max_headers = 4;
  limits.max_body_bytes = 16;
  return limits;
}

// Feeds `bytes` whole; returns the bytes used.
size_t FeedWhole(HttpRequestParser& parser, const std::string& bytes) {
  return parser.Consume(bytes);
}

// Feeds `bytes` one byte at a time until the parser stops needing more;
// returns the bytes used.
size_t FeedBytewise(HttpRequestParser& parser, const std::string& bytes) {
  size_t used = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (parser.state() != State::kNeedMore) break;
    used += parser.Consume(absl::string_view(&bytes[i], 1));
  }
  return used;
}

// Runs each test body with whole and byte-at-a-time feeding.
class HttpRequestParserTest : public ::testing::TestWithParam<bool> {
 protected:
  size_t Feed(HttpRequestParser& parser, const std::string& bytes) {
    return GetParam() ? FeedBytewise(parser, bytes)
                      : FeedWhole(parser, bytes);
  }

  // Parses `bytes` with `limits`; expects an error with `status`.
  void ExpectError(const std::string& bytes, int status,
                   const std::string& needle = "",
                   HttpLimits limits = HttpLimits()) {
    HttpRequestParser parser(limits);
    Feed(parser, bytes);
    ASSERT_EQ(parser.state(), State::kError) << bytes;
    EXPECT_EQ(parser.error_status(), status) << parser.error_message();
    EXPECT_FALSE(parser.keep_alive());
    if (!needle.empty()) {
      EXPECT_NE(parser.error_message().find(needle), std::string::npos)
          << parser.error_message();
    }
  }
};

TEST_P(HttpRequestParserTest, ParsesGetWithQueryAndHeaders) {
  HttpRequestParser parser(HttpLimits{});
  const std::string bytes =
      "GET /me%74rics?format=json&a=b%20c&d=e+f&flag HTTP/1.1\r\n"
      "Host: localhost\r\nAccept: text/plain\r\nX-Two: 1\r\nx-two: 2\r\n\r\n";
  EXPECT_EQ(Feed(parser, bytes), bytes.size());
  ASSERT_EQ(parser.state(), State::kDone) << parser.error_message();
  const HttpRequest& r = parser.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query.at("format"), "json");
  EXPECT_EQ(r.query.at("a"), "b c");
  EXPECT_EQ(r.query.at("d"), "e f");
  EXPECT_EQ(r.query.at("flag"), "");
  EXPECT_EQ(r.headers.at("host"), "localhost");
  EXPECT_EQ(r.headers.at("accept"), "text/plain");
  EXPECT_EQ(r.headers.at("x-two"), "1, 2");
  EXPECT_TRUE(r.body.empty());
  EXPECT_TRUE(parser.keep_alive());
  EXPECT_TRUE(r.WantsJson());
}

TEST_P(HttpRequestParserTest, ParsesPostBodyByContentLength) {
  HttpRequestParser parser(HttpLimits{});
  const std::string bytes =
      "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET";
  // Stops after the body: "GET" belongs to the next request.
  EXPECT_EQ(Feed(parser, bytes), bytes.size() - 3);
  ASSERT_EQ(parser.state(), State::kDone);
  EXPECT_EQ(parser.request().body, "hello");
}

TEST_P(HttpRequestParserTest, PipelinedRequestsParseOneAtATime) {
  HttpRequestParser parser(HttpLimits{});
  const std::string one = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string two = "HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string both = one + two;
  size_t used = Feed(parser, both);
  EXPECT_EQ(used, one.size());
  ASSERT_EQ(parser.state(), State::kDone);
  EXPECT_EQ(parser.request().path, "/a");
  EXPECT_EQ(parser.Consume(both.substr(used)), 0u);  // Done: takes nothing.
  parser.Reset();
  EXPECT_EQ(Feed(parser, both.substr(used)), two.size());
  ASSERT_EQ(parser.state(), State::kDone);
  EXPECT_EQ(parser.request().method, "HEAD");
  EXPECT_EQ(parser.request().path, "/b");
}

TEST_P(HttpRequestParserTest, Http10ClosesAndConnectionCloseIsHonoured) {
  {
    HttpRequestParser parser(HttpLimits{});
    Feed(parser, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT_EQ(parser.state(), State::kDone);
    EXPECT_FALSE(parser.keep_alive());
  }
  {
    HttpRequestParser parser(HttpLimits{});
    Feed(parser, "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n");
    ASSERT_EQ(parser.state(), State::kDone);
    EXPECT_FALSE(parser.keep_alive());
  }
}

TEST_P(HttpRequestParserTest, AcceptsBareLfLeadingEmptyLinesAndAbsoluteForm) {
  HttpRequestParser parser(HttpLimits{});
  Feed(parser, "\r\n\nGET http://example.com:80/health?x=1 HTTP/1.1\nHost: h\n\n");
  ASSERT_EQ(parser.state(), State::kDone) << parser.error_message();
  EXPECT_EQ(parser.request().path, "/health");
  EXPECT_EQ(parser.request().query.at("x"), "1");
}

TEST_P(HttpRequestParserTest, StartedOnlyAfterTheFirstRealByte) {
  HttpRequestParser parser(HttpLimits{});
  EXPECT_FALSE(parser.started());
  parser.Consume("\r\n");
  EXPECT_FALSE(parser.started());
  parser.Consume("G");
  EXPECT_TRUE(parser.started());
  parser.Reset();
  EXPECT_FALSE(parser.started());
}

TEST_P(HttpRequestParserTest, HeadOverLimitIs431WithoutBufferingIt) {
  HttpLimits limits = SmallLimits();
  ExpectError(absl::StrCat("GET / HTTP/1.1\r\nHost: h\r\nX: ",
                           std::string(300, 'a'), "\r\n\r\n"),
              431, "max_head_bytes 256", limits);
  // A request line alone over the limit, never ended.
  ExpectError(absl::StrCat("GET /", std::string(300, 'a')), 431,
              "max_head_bytes", limits);
  // Exactly at the limit is fine.
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  const size_t fill = limits.max_head_bytes - head.size() - 4;
  head += std::string(fill, 'b') + "\r\n\r\n";
  ASSERT_EQ(head.size(), limits.max_head_bytes);
  HttpRequestParser parser(limits);
  Feed(parser, head);
  EXPECT_EQ(parser.state(), State::kDone) << parser.error_message();
}

TEST_P(HttpRequestParserTest, TooManyHeadersIs431) {
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 4; ++i) absl::StrAppend(&head, "X", i, ": v\r\n");
  ExpectError(head + "\r\n", 431, "max_headers 4", SmallLimits());
  // Four in all is fine.
  HttpRequestParser parser(SmallLimits());
  Feed(parser, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
  EXPECT_EQ(parser.state(), State::kDone);
}

TEST_P(HttpRequestParserTest, BodyOverLimitIs413BeforeTheBody) {
  HttpRequestParser parser(SmallLimits());
  // No body byte sent: the limit is checked against Content-Length.
  Feed(parser, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n");
  ASSERT_EQ(parser.state(), State::kError);
  EXPECT_EQ(parser.error_status(), 413);
  EXPECT_NE(parser.error_message().find("17 bytes exceeds max_body_bytes 16"),
            std::string::npos);
  HttpRequestParser ok(SmallLimits());
  Feed(ok, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n\r\n" +
               std::string(16, 'x'));
  EXPECT_EQ(ok.state(), State::kDone);
  ExpectError("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
              "99999999999999999999999\r\n\r\n",
              400, "Content-Length");
}

TEST_P(HttpRequestParserTest, ChunkedBodiesAreRefused) {
  ExpectError(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      411, "Content-Length");
  ExpectError(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 5\r\n\r\nhello",
      400, "both");
}

TEST_P(HttpRequestParserTest, BadInputIs400) {
  const std::vector<std::string> bad = {
      "GET /\r\n\r\n",                                   // No version.
      "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",              // Double space.
      "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",               // Bad method.
      "GET / HTTX/1.1\r\nHost: h\r\n\r\n",               // Bad version.
      "GET foo HTTP/1.1\r\nHost: h\r\n\r\n",             // Relative target.
      "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",            // Bad escape.
      "GET /%4 HTTP/1.1\r\nHost: h\r\n\r\n",             // Short escape.
      "GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n",          // Encoded NUL.
      "GET /?a=%G1 HTTP/1.1\r\nHost: h\r\n\r\n",         // Bad query escape.
      "GET / HTTP/1.1\r\n\r\n",                          // No Host.
      "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",    // Not NAME: VALUE.
      "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",    // Line folding.
      std::string("GET / HTTP/1.1\r\nHost: h\0\r\n\r\n", 26),  // NUL.
      "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
      "Content-Length: 1\r\n\r\nx",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
  };
  for (const std::string& bytes : bad) {
    SCOPED_TRACE(bytes);
    ExpectError(bytes, 400);
  }
}

TEST_P(HttpRequestParserTest, UnsupportedVersionIs505) {
  ExpectError("GET / HTTP/2.0\r\n\r\n", 505, "2.0");
}

TEST_P(HttpRequestParserTest, ErrorStateTakesNoMoreBytes) {
  HttpRequestParser parser(HttpLimits{});
  Feed(parser, "BAD\r\n");
  ASSERT_EQ(parser.state(), State::kError);
  EXPECT_EQ(parser.Consume("GET / HTTP/1.1\r\n"), 0u);
}

INSTANTIATE_TEST_SUITE_P(WholeAndBytewise, HttpRequestParserTest,
                         ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Bytewise" : "Whole";
                         });

TEST(PercentDecodeTest, DecodesAndRejects) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%2Fb%2fc+d", false, &out));
  EXPECT_EQ(out, "a/b/c+d");
  EXPECT_TRUE(PercentDecode("c+d", true, &out));
  EXPECT_EQ(out, "c d");
  EXPECT_FALSE(PercentDecode("%", false, &out));
  EXPECT_FALSE(PercentDecode("%a", false, &out));
  EXPECT_FALSE(PercentDecode("%00", false, &out));
  EXPECT_FALSE(PercentDecode("%xy", false, &out));
}

TEST(HttpRequestTest, WantsJsonFromQueryOrAccept) {
  HttpRequest r;
  EXPECT_FALSE(r.WantsJson());
  r.headers["accept"] = "text/html, Application/JSON;q=0.9";
  EXPECT_TRUE(r.WantsJson());
  r.query["format"] = "text";  // The query wins.
  EXPECT_FALSE(r.WantsJson());
  r.query["format"] = "json";
  EXPECT_TRUE(r.WantsJson());
}

}  // namespace
}  // namespace bevrpc::admin
