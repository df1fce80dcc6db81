// TraceContext: one span of a distributed trace, as W3C Trace Context
// (https://www.w3.org/TR/trace-context/) carries it in the `traceparent`
// request header: "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>".
//
//   // A server, on an incoming call:
//   absl::StatusOr<TraceContext> caller = TraceContext::Parse(header);
//   TraceContext mine = caller.ok() ? caller->Child() : TraceContext::NewRoot();
//   // An outgoing call made for it:
//   metadata["traceparent"] = mine.Child().Format();
//
// bevrpc sends it with every call (rules in rpc/call_options.h, `trace`),
// and a server exposes its call's span as ServerContext::trace().
//
// Plain value; thread-compatible. NewRoot() and Child() draw ids from a
// per-thread generator seeded from the OS: no lock, no allocation.
#ifndef BEVRPC_RPC_TRACE_TRACE_CONTEXT_H_
#define BEVRPC_RPC_TRACE_TRACE_CONTEXT_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bevrpc::trace {

// The request header that carries a TraceContext.
inline constexpr absl::string_view kTraceparentKey = "traceparent";
// Length of a version-00 traceparent value.
inline constexpr size_t kTraceparentSize = 55;

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

struct TraceContext {
  // The "sampled" trace flag: the caller may have recorded the trace.
  static constexpr uint8_t kSampled = 0x01;

  TraceId trace_id{};  // All zero: no trace (invalid).
  SpanId span_id{};    // This span; the parent-id of calls made under it.
  uint8_t flags = 0;

  // True when both ids are non-zero (a parsed or generated context).
  bool valid() const;

  // A `traceparent` value, strictly by the W3C rules: lower-case hex only;
  // all-zero trace-id or parent-id, version "ff", and a version-00 value of
  // any length but 55 are invalid (INVALID_ARGUMENT, naming the fault). A
  // later version is read as version 00 when its first 55 characters are,
  // followed by nothing or by '-' (the spec's forward-compatibility rule).
  // `span_id` is the caller's span: the new span's parent.
  static absl::StatusOr<TraceContext> Parse(absl::string_view traceparent);

  // "00-<trace-id>-<span-id>-<flags>", always version 00.
  std::string Format() const;
  // The same into `out`, which must hold kTraceparentSize bytes.
  void FormatTo(char* out) const;

  // A new trace: random trace-id and span-id, flags kSampled.
  static TraceContext NewRoot();
  // A span under this one: same trace-id and flags (only the bits version
  // 00 defines), new random span-id. An invalid context gives NewRoot().
  TraceContext Child() const;

  // Lower-case hex of the ids, for pages and logs.
  std::string TraceIdHex() const;
  std::string SpanIdHex() const;

  bool operator==(const TraceContext& o) const {
    return trace_id == o.trace_id && span_id == o.span_id && flags == o.flags;
  }
  bool operator!=(const TraceContext& o) const { return !(*this == o); }
};

// Lower-case hex of any id (32 or 16 characters).
std::string ToHex(const TraceId& id);
std::string ToHex(const SpanId& id);
// Parses 32 (or 16) lower-case hex characters; false on anything else.
bool ParseHex(absl::string_view hex, TraceId* id);
bool ParseHex(absl::string_view hex, SpanId* id);

// 64 random bits from this thread's generator (xoshiro256**, seeded from
// getrandom()). Not for cryptography. Any thread.
uint64_t RandomU64();

}  // namespace bevrpc::trace

#endif  // BEVRPC_RPC_TRACE_TRACE_CONTEXT_H_
