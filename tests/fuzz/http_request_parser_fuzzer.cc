// Fuzz target: admin::HttpRequestParser fed arbitrary bytes.
//
// Input layout: byte 0 picks how the stream is cut into chunks (one byte at
// a time, or pseudo-random chunks up to 7, 64 or 1024 bytes, seeded by
// byte 0); the rest is the byte stream, parsed as pipelined requests (Reset
// after each one) until an error or the end.
//
// The stream is parsed twice, whole and chunked. Checked:
//   - Consume() never reports more bytes than it was given, takes every
//     byte while it needs more, and takes none once done or failed;
//   - the requests (method, path, query, headers, body, keep-alive) and the
//     error (status and message), or none, are the same both ways;
//   - every request is within the limits (headers, body) and every error
//     status is one the parser documents;
//   - the response to each request serializes with the right length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rpc/admin/http_request_parser.h"
#include "rpc/admin/http_response_writer.h"
#include "tests/fuzz/fuzz_check.h"

namespace bevrpc {
namespace {

using admin::HttpLimits;
using admin::HttpRequestParser;

// Small limits, so that every bound is reachable.
HttpLimits Limits() {
  HttpLimits limits;
  limits.max_head_bytes = 512;
  limits.max_headers = 8;
  limits.max_body_bytes = 256;
  return limits;
}

// Everything observable about one parse, as text.
std::string Describe(const HttpRequestParser& parser,
                     const admin::HttpRequest& r) {
  std::string out = absl::StrCat(r.method, " ", r.path, " ka=",
                                 parser.keep_alive(), " body=", r.body, "\n");
  for (const auto& [k, v] : r.query) absl::StrAppend(&out, "q ", k, "=", v, "\n");
  for (const auto& [k, v] : r.headers) absl::StrAppend(&out, "h ", k, ":", v, "\n");
  return out;
}

// Parses `stream` delivered in `chunks` (sizes); returns the transcript.
std::string Parse(absl::string_view stream, const std::vector<size_t>& chunks) {
  HttpRequestParser parser(Limits());
  std::string transcript;
  std::string pending;  // Delivered and not yet consumed.
  size_t offset = 0;
  size_t chunk = 0;
  while (true) {
    if (!pending.empty()) {
      const size_t used = parser.Consume(pending);
      FUZZ_CHECK(used <= pending.size(), "used " << used << " of " << pending.size());
      if (parser.state() == HttpRequestParser::State::kNeedMore) {
        FUZZ_CHECK(used == pending.size(), "needs more but left bytes");
      }
      pending.erase(0, used);
    }
    if (parser.state() == HttpRequestParser::State::kError) {
      const int s = parser.error_status();
      FUZZ_CHECK(s == 400 || s == 411 || s == 413 || s == 431 || s == 505,
                 "error status " << s);
      FUZZ_CHECK(parser.Consume("GET / HTTP/1.1\r\n") == 0, "took bytes after error");
      return absl::StrCat(transcript, "error ", s, " ", parser.error_message());
    }
    if (parser.state() == HttpRequestParser::State::kDone) {
      admin::HttpRequest& r = parser.request();
      FUZZ_CHECK(r.body.size() <= Limits().max_body_bytes, "body over limit");
      FUZZ_CHECK(r.headers.size() <= Limits().max_headers, "headers over limit");
      FUZZ_CHECK(parser.Consume("x") == 0, "took bytes after done");
      transcript += Describe(parser, r);
      admin::HttpResponse response;
      response.body = r.body;
      response.headers.emplace_back(r.path, r.method);  // Hostile names too.
      const std::string bytes =
          admin::SerializeHttpResponse(response, r.method == "HEAD", false);
      FUZZ_CHECK(bytes.size() >= response.body.size(), "short response");
      parser.Reset();
      continue;  // What is pending may hold the next request.
    }
    if (offset == stream.size()) break;
    const size_t n = std::min(chunks[chunk++ % chunks.size()], stream.size() - offset);
    pending.append(stream.data() + offset, n);
    offset += n;
  }
  return absl::StrCat(transcript, "need more, started=", parser.started());
}

}  // namespace
}  // namespace bevrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const absl::string_view stream(reinterpret_cast<const char*>(data) + 1,
                                 size - 1);
  std::vector<size_t> chunks;
  const size_t max_chunk[] = {1, 7, 64, 1024};
  uint32_t rng = mode * 2654435761u + 1;
  for (int i = 0; i < 64; ++i) {
    rng = rng * 1103515245u + 12345u;
    chunks.push_back(1 + (rng >> 8) % max_chunk[mode % 4]);
  }
  const std::string whole = bevrpc::Parse(stream, {stream.size() + 1});
  const std::string chunked = bevrpc::Parse(stream, chunks);
  FUZZ_CHECK(whole == chunked, "whole:\n" << whole << "\nchunked:\n" << chunked);
  return 0;
}
