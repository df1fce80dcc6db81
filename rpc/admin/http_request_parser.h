// HttpRequestParser: an incremental, bounded HTTP/1.0 and HTTP/1.1 request
// parser for the built-in pages. It takes bytes in any chunking (one at a
// time works), stops at the end of one request, and checks every limit
// (HttpLimits) before it buffers: the head (request line and headers) is
// bounded by max_head_bytes and max_headers, the body by max_body_bytes,
// which is checked against Content-Length before any body byte is read.
//
//   HttpRequestParser parser(limits);
//   size_t used = parser.Consume(bytes);      // <= bytes.size()
//   switch (parser.state()) {
//     case HttpRequestParser::State::kNeedMore: ... read more ...
//     case HttpRequestParser::State::kDone:
//       Serve(parser.request(), parser.keep_alive());
//       parser.Reset();                        // next pipelined request
//       ... feed bytes.substr(used) ...
//     case HttpRequestParser::State::kError:
//       Answer(parser.error_status(), parser.error_message());  // then close
//   }
//
// Accepted: origin-form targets ("/path?query"), absolute-form
// ("http://host/path"), "*" for OPTIONS; percent-encoded path and query
// (malformed escapes and encoded NUL are 400; "+" in the query is a
// space); bodies only by Content-Length. Transfer-Encoding (chunked bodies)
// is answered 411, both Transfer-Encoding and Content-Length 400, a
// repeated Content-Length 400, HTTP/1.1 without Host 400, versions other
// than 1.0 and 1.1 505, control characters and obsolete line folding 400.
// Empty lines before the request line are skipped (RFC 9112 2.2), and a
// bare LF ends a line as CRLF does. Header names are lower-cased; repeated
// headers are joined with ", ".
//
// Not thread-safe: one parser per connection, on its thread.
#ifndef BEVRPC_RPC_ADMIN_HTTP_REQUEST_PARSER_H_
#define BEVRPC_RPC_ADMIN_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "rpc/admin/http_limits.h"
#include "rpc/admin/http_page.h"

namespace bevrpc::admin {

class HttpRequestParser {
 public:
  enum class State { kNeedMore, kDone, kError };

  // `limits` is copied.
  explicit HttpRequestParser(const HttpLimits& limits);

  // Reads from `data` up to the end of one request and returns how many
  // bytes it used; the rest belongs to the next request. Uses nothing once
  // the state is kDone or kError.
  size_t Consume(absl::string_view data);

  State state() const { return state_; }
  // True once a byte of the current request (other than leading empty
  // lines) has been read: the request timeout runs from then.
  bool started() const { return started_; }

  // kDone: the request (peer left empty), and whether the connection stays
  // open after the response (HTTP/1.1 without "Connection: close").
  HttpRequest& request() { return request_; }
  bool keep_alive() const { return keep_alive_; }

  // kError: the status to answer with (400, 411, 413, 431, 505) and what
  // was wrong, naming the limit where one was hit.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

  // Forgets the current request: ready for the next one.
  void Reset();

 private:
  enum class Phase { kRequestLine, kHeaders, kBody };

  // Consumes head bytes up to and including one '\n'.
  size_t ConsumeHeadLine(absl::string_view data);
  void OnHeadLine(absl::string_view line);
  void ParseRequestLine(absl::string_view line);
  void ParseTarget(absl::string_view target);
  void ParseHeader(absl::string_view line);
  // After the empty line: framing and connection headers.
  void FinishHead();
  void Fail(int status, std::string message);

  HttpLimits limits_;
  State state_ = State::kNeedMore;
  Phase phase_ = Phase::kRequestLine;
  bool started_ = false;
  size_t head_bytes_ = 0;
  size_t header_count_ = 0;
  std::string line_;  // The head line being read (without its '\n').
  uint64_t body_left_ = 0;
  bool http11_ = true;
  bool content_length_seen_ = false;
  HttpRequest request_;
  bool keep_alive_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

// Percent-decodes `in` into *out ("+" is a space when `plus_is_space`).
// False for a malformed escape or an encoded NUL.
bool PercentDecode(absl::string_view in, bool plus_is_space, std::string* out);

}  // namespace bevrpc::admin

#endif  // BEVRPC_RPC_ADMIN_HTTP_REQUEST_PARSER_H_
