// Escaping for the pages' HTML and JSON output.
//
//   out += "<td>" + HtmlEscape(peer) + "</td>";
//   out += "\"peer\":" + JsonString(peer);
//
// Functions of their arguments only; thread-safe.
#ifndef BEVRPC_RPC_ADMIN_TEXT_ESCAPE_H_
#define BEVRPC_RPC_ADMIN_TEXT_ESCAPE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace bevrpc::admin {

// & < > " ' as entities.
std::string HtmlEscape(absl::string_view text);

// A JSON string literal, quotes included: " \ and control characters
// escaped; bytes >= 0x80 are copied (UTF-8 passes through).
std::string JsonString(absl::string_view text);

}  // namespace bevrpc::admin

#endif  // BEVRPC_RPC_ADMIN_TEXT_ESCAPE_H_
