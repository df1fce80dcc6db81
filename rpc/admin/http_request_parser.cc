#include "rpc/admin/http_request_parser.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace bevrpc::admin {
namespace {

// RFC 9110 5.6.2 tchar.
bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A comma-separated header value lists `token` (case-insensitive).
bool ListsToken(absl::string_view value, absl::string_view token) {
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(item), token)) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool PercentDecode(absl::string_view in, bool plus_is_space,
                   std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return false;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out->push_back(c);
  }
  return true;
}

HttpRequestParser::HttpRequestParser(const HttpLimits& limits)
    : limits_(limits) {}

void HttpRequestParser::Reset() {
  state_ = State::kNeedMore;
  phase_ = Phase::kRequestLine;
  started_ = false;
  head_bytes_ = 0;
  header_count_ = 0;
  line_.clear();
  body_left_ = 0;
  http11_ = true;
  content_length_seen_ = false;
  request_ = HttpRequest();
  keep_alive_ = false;
  error_status_ = 0;
  error_message_.clear();
}

void HttpRequestParser::Fail(int status, std::string message) {
  state_ = State::kError;
  error_status_ = status;
  error_message_ = std::move(message);
  keep_alive_ = false;
}

size_t HttpRequestParser::Consume(absl::string_view data) {
  size_t used = 0;
  while (used < data.size() && state_ == State::kNeedMore) {
    absl::string_view rest = data.substr(used);
    if (phase_ == Phase::kBody) {
      size_t n = static_cast<size_t>(
          std::min<uint64_t>(body_left_, rest.size()));
      request_.body.append(rest.data(), n);
      body_left_ -= n;
      used += n;
      if (body_left_ == 0) state_ = State::kDone;
    } else {
      used += ConsumeHeadLine(rest);
    }
  }
  return used;
}

size_t HttpRequestParser::ConsumeHeadLine(absl::string_view data) {
  size_t end = data.find('\n');
  size_t take = end == absl::string_view::npos ? data.size() : end + 1;
  // Checked before buffering: the head never holds more than the limit.
  if (head_bytes_ + take > limits_.max_head_bytes) {
    Fail(431, absl::StrCat("request line and headers exceed max_head_bytes ",
                           limits_.max_head_bytes));
    return take;
  }
  head_bytes_ += take;
  if (end == absl::string_view::npos) {
    line_.append(data.data(), take);
    // A lone CR may still be a leading empty line.
    if (!line_.empty() && line_ != "\r") started_ = true;
    return take;
  }
  line_.append(data.data(), end);
  std::string line = std::move(line_);
  line_.clear();
  absl::string_view view = line;
  absl::ConsumeSuffix(&view, "\r");
  OnHeadLine(view);
  return take;
}

void HttpRequestParser::OnHeadLine(absl::string_view line) {
  for (char c : line) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      Fail(400, "control character in the request line or a header");
      return;
    }
  }
  if (phase_ == Phase::kRequestLine) {
    if (line.empty() && !started_) {
      // Leading empty lines are skipped; they still count as head bytes.
      return;
    }
    started_ = true;
    ParseRequestLine(line);
    if (state_ == State::kNeedMore) phase_ = Phase::kHeaders;
    return;
  }
  if (line.empty()) {
    FinishHead();
    return;
  }
  ParseHeader(line);
}

void HttpRequestParser::ParseRequestLine(absl::string_view line) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3) {
    Fail(400, "malformed request line: expected METHOD TARGET HTTP/1.x");
    return;
  }
  if (!IsToken(parts[0])) {
    Fail(400, "malformed request line: bad method");
    return;
  }
  absl::string_view version = parts[2];
  if (version == "HTTP/1.1") {
    http11_ = true;
  } else if (version == "HTTP/1.0") {
    http11_ = false;
  } else if (absl::StartsWith(version, "HTTP/") && version.size() == 8 &&
             absl::ascii_isdigit(version[5]) && version[6] == '.' &&
             absl::ascii_isdigit(version[7])) {
    Fail(505, absl::StrCat("HTTP version ", version.substr(5),
                           " is not supported: use HTTP/1.1 or HTTP/1.0"));
    return;
  } else {
    Fail(400, "malformed request line: bad HTTP version");
    return;
  }
  request_.method = std::string(parts[0]);
  ParseTarget(parts[1]);
}

void HttpRequestParser::ParseTarget(absl::string_view target) {
  if (target == "*" && request_.method == "OPTIONS") {
    request_.path = "*";
    return;
  }
  if (absl::StartsWithIgnoreCase(target, "http://") ||
      absl::StartsWithIgnoreCase(target, "https://")) {
    // Absolute form: drop the scheme and authority.
    absl::string_view rest = target.substr(target.find("//") + 2);
    size_t slash = rest.find_first_of("/?");
    target = slash == absl::string_view::npos ? "/" : rest.substr(slash);
    if (!target.empty() && target[0] == '?') {
      // "http://host?x": the path is "/".
      request_.path = "/";
    }
  }
  if (target.empty() || (target[0] != '/' && target[0] != '?')) {
    Fail(400, "malformed request target: expected an absolute path");
    return;
  }
  // A fragment is never sent; ignore one if it is.
  target = target.substr(0, target.find('#'));
  size_t q = target.find('?');
  absl::string_view path = target.substr(0, q);
  if (path.empty()) path = "/";
  if (!PercentDecode(path, /*plus_is_space=*/false, &request_.path)) {
    Fail(400, "malformed percent-encoding in the request path");
    return;
  }
  if (q == absl::string_view::npos) return;
  for (absl::string_view item :
       absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
    size_t eq = item.find('=');
    std::string key, value;
    if (!PercentDecode(item.substr(0, eq), true, &key) ||
        (eq != absl::string_view::npos &&
         !PercentDecode(item.substr(eq + 1), true, &value))) {
      Fail(400, "malformed percent-encoding in the query");
      return;
    }
    request_.query.emplace(std::move(key), std::move(value));  // First wins.
  }
}

void HttpRequestParser::ParseHeader(absl::string_view line) {
  if (line[0] == ' ' || line[0] == '\t') {
    Fail(400, "obsolete header line folding is not accepted");
    return;
  }
  if (++header_count_ > limits_.max_headers) {
    Fail(431, absl::StrCat("more than max_headers ", limits_.max_headers,
                           " header lines"));
    return;
  }
  size_t colon = line.find(':');
  absl::string_view name =
      colon == absl::string_view::npos ? line : line.substr(0, colon);
  if (colon == absl::string_view::npos || !IsToken(name)) {
    Fail(400, "malformed header line: expected NAME: VALUE");
    return;
  }
  absl::string_view value =
      absl::StripAsciiWhitespace(line.substr(colon + 1));
  std::string key = absl::AsciiStrToLower(name);
  if (key == "content-length") {
    if (content_length_seen_) {
      Fail(400, "more than one Content-Length header");
      return;
    }
    content_length_seen_ = true;
  }
  auto [it, inserted] = request_.headers.emplace(key, std::string(value));
  if (!inserted) absl::StrAppend(&it->second, ", ", value);
}

void HttpRequestParser::FinishHead() {
  const auto& headers = request_.headers;
  if (http11_ && headers.find("host") == headers.end()) {
    Fail(400, "HTTP/1.1 request without a Host header");
    return;
  }
  auto te = headers.find("transfer-encoding");
  if (te != headers.end()) {
    if (content_length_seen_) {
      Fail(400, "both Transfer-Encoding and Content-Length");
      return;
    }
    Fail(411, "request bodies with Transfer-Encoding (chunked) are not "
              "accepted: send Content-Length");
    return;
  }
  auto cl = headers.find("content-length");
  if (cl != headers.end()) {
    uint64_t length = 0;
    const std::string& text = cl->second;
    bool digits = !text.empty() && text.size() <= 19;
    for (char c : text) digits = digits && absl::ascii_isdigit(c);
    if (!digits || !absl::SimpleAtoi(text, &length)) {
      Fail(400, "malformed Content-Length");
      return;
    }
    if (length > limits_.max_body_bytes) {
      Fail(413, absl::StrCat("request body ", length,
                             " bytes exceeds max_body_bytes ",
                             limits_.max_body_bytes));
      return;
    }
    body_left_ = length;
    request_.body.reserve(static_cast<size_t>(length));
  }
  auto connection = headers.find("connection");
  const bool close = connection != headers.end() &&
                     ListsToken(connection->second, "close");
  // HTTP/1.0 closes after the response even when asked to keep alive.
  keep_alive_ = http11_ && !close;
  phase_ = Phase::kBody;
  if (body_left_ == 0) state_ = State::kDone;
}

}  // namespace bevrpc::admin
