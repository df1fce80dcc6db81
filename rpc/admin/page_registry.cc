#include "rpc/admin/page_registry.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "rpc/admin/http_response_writer.h"
#include "rpc/admin/text_escape.h"

namespace bevrpc::admin {

absl::Status PageRegistry::Add(std::string path, std::string title,
                               HttpPageHandler handler) {
  bool valid = !path.empty() && path[0] == '/' && handler != nullptr;
  for (char c : path) {
    valid = valid && c != '?' && c != '#' &&
            !absl::ascii_isspace(static_cast<unsigned char>(c)) &&
            static_cast<unsigned char>(c) >= 0x20;
  }
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTP page \"", path,
        "\": a page needs a path starting with \"/\" (no query, fragment or "
        "whitespace) and a handler"));
  }
  if (path == "/" || pages_.count(path) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("HTTP page \"", path, "\" is already registered"));
  }
  pages_.emplace(std::move(path), Page{std::move(title), std::move(handler)});
  return absl::OkStatus();
}

std::vector<PageRegistry::PageInfo> PageRegistry::Pages() const {
  std::vector<PageInfo> out;
  out.push_back({"/", "This index"});
  for (const auto& [path, page] : pages_) out.push_back({path, page.title});
  return out;
}

HttpResponse PageRegistry::Handle(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = TextResponse(
        405, absl::StrCat("method ", request.method,
                          " is not allowed: the pages take GET and HEAD"));
    response.headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }
  if (request.path == "/") return Index(request);
  auto it = pages_.find(request.path);
  if (it == pages_.end()) {
    return TextResponse(404, absl::StrCat("no page at ", request.path,
                                          "; see / for the list"));
  }
  return it->second.handler(request);
}

HttpResponse PageRegistry::Index(const HttpRequest& request) const {
  HttpResponse response;
  std::vector<PageInfo> pages = Pages();
  if (request.WantsJson()) {
    response.content_type = "application/json";
    response.body = "{\"pages\":[";
    for (size_t i = 0; i < pages.size(); ++i) {
      absl::StrAppend(&response.body, i == 0 ? "" : ",", "{\"path\":",
                      JsonString(pages[i].path), ",\"title\":",
                      JsonString(pages[i].title), "}");
    }
    response.body += "]}\n";
    return response;
  }
  response.content_type = "text/html; charset=utf-8";
  response.body =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
      "<title>bevrpc server</title></head>\n<body>\n<h1>bevrpc server</h1>\n"
      "<ul>\n";
  for (const PageInfo& page : pages) {
    const std::string path = HtmlEscape(page.path);
    absl::StrAppend(&response.body, "<li><a href=\"", path, "\">", path,
                    "</a> &mdash; ", HtmlEscape(page.title), "</li>\n");
  }
  response.body +=
      "</ul>\n<p>Add <code>?format=json</code> to a page for JSON.</p>\n"
      "</body></html>\n";
  return response;
}

}  // namespace bevrpc::admin
