// The page API of the built-in HTTP pages: a page is a function from a
// parsed request to a response, registered with Server::AddHttpPage().
//
//   admin::HttpResponse Hello(const admin::HttpRequest& request) {
//     admin::HttpResponse response;
//     response.body = request.WantsJson() ? "{\"hello\":1}" : "hello\n";
//     if (request.WantsJson()) response.content_type = "application/json";
//     return response;
//   }
//
// Plain values; thread-compatible.
#ifndef BEVRPC_RPC_ADMIN_HTTP_PAGE_H_
#define BEVRPC_RPC_ADMIN_HTTP_PAGE_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace bevrpc::admin {

struct HttpRequest {
  std::string method;                        // "GET", "HEAD", "POST"
  std::string path;                          // "/metrics" (decoded, without query)
  std::map<std::string, std::string> query;  // decoded ?a=b&c=d
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string peer;  // "127.0.0.1:5555"
  // format=json in the query, or an Accept header naming application/json.
  bool WantsJson() const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Runs on the connection's I/O thread: must be quick and must not block.
using HttpPageHandler = std::function<HttpResponse(const HttpRequest&)>;

}  // namespace bevrpc::admin

#endif  // BEVRPC_RPC_ADMIN_HTTP_PAGE_H_
