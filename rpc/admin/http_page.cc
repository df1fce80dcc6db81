#include "rpc/admin/http_page.h"

namespace bevrpc::admin {

bool HttpRequest::WantsJson() const {
  auto format = query.find("format");
  if (format != query.end()) return format->second == "json";
  auto accept = headers.find("accept");
  return accept != headers.end() &&
         accept->second.find("application/json") != std::string::npos;
}

}  // namespace bevrpc::admin
