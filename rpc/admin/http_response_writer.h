// Serializes an HttpResponse as HTTP/1.1 bytes: status line, Content-Type,
// Content-Length, Connection, the response's extra headers, then the body
// (left out for HEAD, with Content-Length still the body's length).
//
//   std::string bytes = SerializeHttpResponse(response, /*head=*/false,
//                                             /*close=*/true);
//
// Extra headers whose name is not a token or whose value holds CR, LF or
// NUL are dropped (no header injection from a page), as are extra
// Content-Length, Content-Type, Connection and Transfer-Encoding headers,
// which the writer owns. Functions of their arguments only; thread-safe.
#ifndef BEVRPC_RPC_ADMIN_HTTP_RESPONSE_WRITER_H_
#define BEVRPC_RPC_ADMIN_HTTP_RESPONSE_WRITER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "rpc/admin/http_page.h"

namespace bevrpc::admin {

// "OK", "Not Found", ...; "Unknown" for a status without a known phrase.
absl::string_view HttpReasonPhrase(int status);

// `head`: the request was HEAD (no body bytes). `close`: the server closes
// the connection after this response ("Connection: close").
std::string SerializeHttpResponse(const HttpResponse& response, bool head,
                                  bool close);

// A plain-text response: `status` with `message` and a newline as body.
HttpResponse TextResponse(int status, absl::string_view message);

}  // namespace bevrpc::admin

#endif  // BEVRPC_RPC_ADMIN_HTTP_RESPONSE_WRITER_H_
