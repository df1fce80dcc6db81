#include "rpc/trace/trace_context.h"

#include <sys/random.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace bevrpc::trace {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Lower-case hex only: the spec forbids upper case in traceparent.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

template <size_t N>
bool ParseHexBytes(absl::string_view hex, std::array<uint8_t, N>* out) {
  if (hex.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <size_t N>
char* WriteHex(const std::array<uint8_t, N>& id, char* out) {
  for (uint8_t b : id) {
    *out++ = kHex[b >> 4];
    *out++ = kHex[b & 0xf];
  }
  return out;
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& id) {
  for (uint8_t b : id) {
    if (b != 0) return false;
  }
  return true;
}

uint64_t SplitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// xoshiro256** (Blackman & Vigna): a few ns per draw, one per thread.
struct Generator {
  Generator() {
    uint64_t seed[4] = {};
    if (getrandom(seed, sizeof(seed), 0) != static_cast<ssize_t>(sizeof(seed))) {
      // No entropy source: mix what differs between threads and runs.
      seed[0] = static_cast<uint64_t>(
          std::chrono::steady_clock::now().time_since_epoch().count());
      seed[1] = std::hash<std::thread::id>()(std::this_thread::get_id());
      seed[2] = reinterpret_cast<uintptr_t>(this);
    }
    uint64_t x = seed[0] ^ seed[1] ^ seed[2] ^ seed[3];
    for (int i = 0; i < 4; ++i) s[i] = seed[i] ^ SplitMix(&x);
    if ((s[0] | s[1] | s[2] | s[3]) == 0) s[0] = 1;  // Never all zero.
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = Rotl(s[3], 45);
    return result;
  }
  uint64_t s[4];
};

template <size_t N>
void FillRandom(std::array<uint8_t, N>* id) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t r = RandomU64();
      std::memcpy(id->data() + i, &r, 8);
    }
  } while (AllZero(*id));
}

}  // namespace

uint64_t RandomU64() {
  thread_local Generator generator;
  return generator.Next();
}

bool TraceContext::valid() const {
  return !AllZero(trace_id) && !AllZero(span_id);
}

absl::StatusOr<TraceContext> TraceContext::Parse(absl::string_view s) {
  if (s.size() < kTraceparentSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "traceparent of ", s.size(), " characters: at least ",
        kTraceparentSize, " expected"));
  }
  const int v_hi = HexValue(s[0]);
  const int v_lo = HexValue(s[1]);
  if (v_hi < 0 || v_lo < 0 || s[2] != '-') {
    return absl::InvalidArgumentError(
        "traceparent version is not two lower-case hex digits and '-'");
  }
  const int version = v_hi << 4 | v_lo;
  if (version == 0xff) {
    return absl::InvalidArgumentError("traceparent version ff is invalid");
  }
  if (version == 0 && s.size() != kTraceparentSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "version-00 traceparent of ", s.size(), " characters: ",
        kTraceparentSize, " expected"));
  }
  // A later version may append fields, after a '-'.
  if (s.size() > kTraceparentSize && s[kTraceparentSize] != '-') {
    return absl::InvalidArgumentError(
        "traceparent has trailing characters not separated by '-'");
  }
  if (s[35] != '-' || s[52] != '-') {
    return absl::InvalidArgumentError(
        "traceparent fields are not separated by '-'");
  }
  TraceContext ctx;
  if (!ParseHexBytes(s.substr(3, 32), &ctx.trace_id)) {
    return absl::InvalidArgumentError(
        "traceparent trace-id is not 32 lower-case hex digits");
  }
  if (!ParseHexBytes(s.substr(36, 16), &ctx.span_id)) {
    return absl::InvalidArgumentError(
        "traceparent parent-id is not 16 lower-case hex digits");
  }
  std::array<uint8_t, 1> flags;
  if (!ParseHexBytes(s.substr(53, 2), &flags)) {
    return absl::InvalidArgumentError(
        "traceparent trace-flags are not 2 lower-case hex digits");
  }
  ctx.flags = flags[0];
  if (AllZero(ctx.trace_id)) {
    return absl::InvalidArgumentError("traceparent trace-id is all zero");
  }
  if (AllZero(ctx.span_id)) {
    return absl::InvalidArgumentError("traceparent parent-id is all zero");
  }
  return ctx;
}

void TraceContext::FormatTo(char* out) const {
  *out++ = '0';
  *out++ = '0';
  *out++ = '-';
  out = WriteHex(trace_id, out);
  *out++ = '-';
  out = WriteHex(span_id, out);
  *out++ = '-';
  *out++ = kHex[flags >> 4];
  *out = kHex[flags & 0xf];
}

std::string TraceContext::Format() const {
  std::string out(kTraceparentSize, '\0');
  FormatTo(out.data());
  return out;
}

TraceContext TraceContext::NewRoot() {
  TraceContext ctx;
  FillRandom(&ctx.trace_id);
  FillRandom(&ctx.span_id);
  ctx.flags = kSampled;
  return ctx;
}

TraceContext TraceContext::Child() const {
  if (!valid()) return NewRoot();
  TraceContext ctx;
  ctx.trace_id = trace_id;
  FillRandom(&ctx.span_id);
  // Version 00 defines only "sampled"; other bits are not passed on.
  ctx.flags = flags & kSampled;
  return ctx;
}

std::string TraceContext::TraceIdHex() const { return ToHex(trace_id); }
std::string TraceContext::SpanIdHex() const { return ToHex(span_id); }

std::string ToHex(const TraceId& id) {
  std::string out(32, '\0');
  WriteHex(id, out.data());
  return out;
}

std::string ToHex(const SpanId& id) {
  std::string out(16, '\0');
  WriteHex(id, out.data());
  return out;
}

bool ParseHex(absl::string_view hex, TraceId* id) {
  return ParseHexBytes(hex, id);
}

bool ParseHex(absl::string_view hex, SpanId* id) {
  return ParseHexBytes(hex, id);
}

}  // namespace bevrpc::trace
