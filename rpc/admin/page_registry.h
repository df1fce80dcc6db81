// PageRegistry: the built-in pages of one server by path, and the routing
// of a parsed request to one: "/" lists every page (HTML readable without
// JavaScript, or JSON), an unknown path is 404, a method other than GET
// and HEAD is 405 (HEAD runs the GET handler; the body is dropped when the
// response is written).
//
//   PageRegistry pages;
//   pages.Add("/health", "Serving status", &HealthPage).IgnoreError();
//   HttpResponse response = pages.Handle(request);
//
// Threading: Add() before serving, from one thread; Handle() and Pages()
// from any thread after that (the handlers themselves must be safe to run
// on every I/O thread).
#ifndef BEVRPC_RPC_ADMIN_PAGE_REGISTRY_H_
#define BEVRPC_RPC_ADMIN_PAGE_REGISTRY_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rpc/admin/http_page.h"

namespace bevrpc::admin {

class PageRegistry {
 public:
  struct PageInfo {
    std::string path;
    std::string title;
  };

  // Adds a page. INVALID_ARGUMENT unless `path` starts with "/" and has no
  // '?', '#' or whitespace, or for a null handler; ALREADY_EXISTS for a
  // path already added, and for "/" (the index).
  absl::Status Add(std::string path, std::string title,
                   HttpPageHandler handler);

  // The response to `request` (never throws; a handler's own status is
  // passed through).
  HttpResponse Handle(const HttpRequest& request) const;

  // Every page, sorted by path, the index first.
  std::vector<PageInfo> Pages() const;

 private:
  struct Page {
    std::string title;
    HttpPageHandler handler;
  };
  HttpResponse Index(const HttpRequest& request) const;

  std::map<std::string, Page> pages_;
};

}  // namespace bevrpc::admin

#endif  // BEVRPC_RPC_ADMIN_PAGE_REGISTRY_H_
