#include "rpc/admin/http_page.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace bevrpc::admin {

bool HttpRequest::WantsJson() const {
  auto format = query.find("format");
  if (format != query.end()) return format->second == "json";
  auto accept = headers.find("accept");
  return accept != headers.end() &&
         absl::StrContains(absl::AsciiStrToLower(accept->second),
                           "application/json");
}

}  // namespace bevrpc::admin
