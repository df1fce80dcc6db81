#include "rpc/admin/http_response_writer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace bevrpc::admin {
namespace {

bool SafeName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ':' || c == '(' || c == ')' ||
        c == ',' || c == '/' || c == ';' || c == '<' || c == '=' ||
        c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' ||
        c == ']' || c == '{' || c == '}' || c == '"') {
      return false;
    }
  }
  return true;
}

bool SafeValue(absl::string_view value) {
  return value.find_first_of(absl::string_view("\r\n\0", 3)) ==
         absl::string_view::npos;
}

bool OwnedByWriter(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "content-type") ||
         absl::EqualsIgnoreCase(name, "connection") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding");
}

}  // namespace

absl::string_view HttpReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string SerializeHttpResponse(const HttpResponse& response, bool head,
                                  bool close) {
  // Status codes are three digits on the wire.
  const int status =
      response.status >= 100 && response.status <= 999 ? response.status : 500;
  std::string out = absl::StrCat(
      "HTTP/1.1 ", status, " ", HttpReasonPhrase(status), "\r\n");
  if (SafeValue(response.content_type) && !response.content_type.empty()) {
    absl::StrAppend(&out, "Content-Type: ", response.content_type, "\r\n");
  }
  absl::StrAppend(&out, "Content-Length: ", response.body.size(), "\r\n",
                  "Connection: ", close ? "close" : "keep-alive", "\r\n");
  for (const auto& [name, value] : response.headers) {
    if (!SafeName(name) || !SafeValue(value) || OwnedByWriter(name)) continue;
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  out += "\r\n";
  if (!head) out += response.body;
  return out;
}

HttpResponse TextResponse(int status, absl::string_view message) {
  HttpResponse response;
  response.status = status;
  response.body = absl::StrCat(message, "\n");
  return response;
}

}  // namespace bevrpc::admin
