#include "rpc/admin/http_response_writer.h"

#include "gtest/gtest.h"

namespace bevrpc::admin {
namespace {

TEST(HttpResponseWriterTest, WritesStatusHeadersAndBody) {
  HttpResponse r;
  r.body = "hello";
  r.headers.emplace_back("Cache-Control", "no-store");
  EXPECT_EQ(SerializeHttpResponse(r, false, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 5\r\nConnection: keep-alive\r\n"
            "Cache-Control: no-store\r\n\r\nhello");
}

TEST(HttpResponseWriterTest, HeadHasLengthButNoBody) {
  HttpResponse r = TextResponse(404, "no page");
  EXPECT_EQ(SerializeHttpResponse(r, true, true),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nContent-Length: 8\r\nConnection: close\r\n\r\n");
}

TEST(HttpResponseWriterTest, DropsUnsafeAndOwnedHeaders) {
  HttpResponse r;
  r.headers.emplace_back("X-Evil", "a\r\nSet-Cookie: x");
  r.headers.emplace_back("Bad Name", "v");
  r.headers.emplace_back("Content-Length", "99");
  r.headers.emplace_back("connection", "upgrade");
  r.headers.emplace_back("X-Fine", "ok");
  const std::string out = SerializeHttpResponse(r, false, true);
  EXPECT_EQ(out.find("Evil"), std::string::npos);
  EXPECT_EQ(out.find("Bad Name"), std::string::npos);
  EXPECT_EQ(out.find("99"), std::string::npos);
  EXPECT_EQ(out.find("upgrade"), std::string::npos);
  EXPECT_NE(out.find("X-Fine: ok\r\n"), std::string::npos);
}

TEST(HttpResponseWriterTest, OutOfRangeStatusBecomes500) {
  HttpResponse r;
  r.status = 42;
  EXPECT_EQ(SerializeHttpResponse(r, false, true).substr(0, 35),
            "HTTP/1.1 500 Internal Server Error\r");
}

}  // namespace
}  // namespace bevrpc::admin
