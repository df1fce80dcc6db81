#include "rpc/admin/page_registry.h"

#include "gtest/gtest.h"
#include "rpc/admin/text_escape.h"

namespace bevrpc::admin {
namespace {

HttpRequest Get(std::string path) {
  HttpRequest r;
  r.method = "GET";
  r.path = std::move(path);
  return r;
}

HttpResponse Hello(const HttpRequest&) {
  HttpResponse r;
  r.body = "hello";
  return r;
}

TEST(PageRegistryTest, RoutesIndexPagesAnd404) {
  PageRegistry pages;
  ASSERT_TRUE(pages.Add("/hello", "Says <hello>", &Hello).ok());
  EXPECT_EQ(pages.Handle(Get("/hello")).body, "hello");
  HttpResponse missing = pages.Handle(Get("/nope"));
  EXPECT_EQ(missing.status, 404);
  HttpResponse index = pages.Handle(Get("/"));
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<a href=\"/hello\">/hello</a>"),
            std::string::npos);
  EXPECT_NE(index.body.find("Says &lt;hello&gt;"), std::string::npos);
  HttpRequest json = Get("/");
  json.query["format"] = "json";
  EXPECT_EQ(pages.Handle(json).body,
            "{\"pages\":[{\"path\":\"/\",\"title\":\"This index\"},"
            "{\"path\":\"/hello\",\"title\":\"Says <hello>\"}]}\n");
}

TEST(PageRegistryTest, HeadRunsGetOtherMethodsAre405) {
  PageRegistry pages;
  ASSERT_TRUE(pages.Add("/hello", "Hello", &Hello).ok());
  HttpRequest head = Get("/hello");
  head.method = "HEAD";
  EXPECT_EQ(pages.Handle(head).body, "hello");
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    HttpRequest r = Get("/hello");
    r.method = method;
    HttpResponse response = pages.Handle(r);
    EXPECT_EQ(response.status, 405) << method;
    ASSERT_EQ(response.headers.size(), 1u);
    EXPECT_EQ(response.headers[0].first, "Allow");
  }
}

TEST(PageRegistryTest, RejectsDuplicatesAndBadPaths) {
  PageRegistry pages;
  ASSERT_TRUE(pages.Add("/a", "A", &Hello).ok());
  EXPECT_EQ(pages.Add("/a", "A again", &Hello).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pages.Add("/", "Index", &Hello).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(pages.Add("a", "A", &Hello).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pages.Add("/a?b", "A", &Hello).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pages.Add("/b c", "A", &Hello).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pages.Add("/c", "C", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TextEscapeTest, EscapesHtmlAndJson) {
  EXPECT_EQ(HtmlEscape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  EXPECT_EQ(JsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
}

}  // namespace
}  // namespace bevrpc::admin
