#include "services/shortener/shortener_service.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rpc/server_context.h"
#include "transport/sync.h"

namespace bevrpc::shortener {

using kv::GetRequest;
using kv::GetResponse;
using kv::KeyValue;
using kv::PutRequest;
using kv::PutResponse;

namespace internal {

// What the calls in progress need of the service; outlives it if they do.
struct Shared {
  Shared(Channel* kv, ShortenerOptions options)
      : stub(kv), options(std::move(options)) {}
  mutable KeyValue::Stub stub;  // Thread-safe; its calls are not const.
  const ShortenerOptions options;
};

}  // namespace internal

namespace {

constexpr char kKeyPrefix[] = "code/";
constexpr size_t kDefaultCodeLength = 7;
constexpr char kBase62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// kv's value limit (services/kv/kv_service.h, KeyValueLimits).
constexpr size_t kMaxUrlBytesLimit = 1024 * 1024;
constexpr uint32_t kMaxCodeAttemptsLimit = 64;

uint64_t Fnv1a(absl::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// splitmix64's finaliser: spreads FNV's weak low bits over the word.
uint64_t Mix(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

// A value for an error message: escaped, and clipped to 64 bytes.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 64;
  std::string shown = absl::CHexEscape(text.substr(0, kMax));
  return absl::StrCat("\"", shown, text.size() > kMax ? "...\"" : "\"");
}

// The offset of the first byte that is not part of valid UTF-8, or npos.
size_t InvalidUtf8At(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3
                 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return i;
    uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = s[i + k];
      if ((cc & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return i;
    }
    i += len;
  }
  return absl::string_view::npos;
}

// A kv call's failure as the caller of Shorten/Lookup should see it.
absl::Status KvError(absl::string_view op, const std::string& key,
                     const absl::Status& s) {
  std::string what = absl::StrCat("kv ", op, " of \"", key, "\": ");
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return absl::Status(s.code(), absl::StrCat(what, s.message()));
    default:
      return absl::InternalError(absl::StrCat(what, s.ToString()));
  }
}

// The incoming call's Completion, finished exactly once: with the result
// by a kv callback, or by the call's OnCancel when it ends first (the
// server may be shutting down: after OnCancel returns nothing may post to
// its loops, so a kv callback finishing concurrently holds the lock while
// it does).
class PendingCall {
 public:
  explicit PendingCall(Completion done) : done_(std::move(done)) {}

  // Unless finished already: runs `fill` (which writes the response) and
  // finishes with `status`. Call off the server's loops (a kv callback).
  void Finish(absl::Status status, absl::FunctionRef<void()> fill) {
    MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    if (status.ok()) fill();
    std::move(done_).Finish(std::move(status));
  }
  void Finish(absl::Status status) {
    Finish(std::move(status), [] {});
  }

  // From OnCancel, on the call's loop: the call is over; drop the result.
  void Abandon() {
    // Not a plain Completion: its inline default constructor needs
    // ServerCall's definition, which only rpc/ sees.
    std::optional<Completion> done;
    {
      MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      done.emplace(std::move(done_));
    }
    // Finished outside the lock: on the loop, Finish() runs inline.
    std::move(*done).Finish(absl::CancelledError("call ended"));
  }

  bool finished() const {
    MutexLock lock(&mu_);
    return finished_;
  }

 private:
  mutable Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  Completion done_ ABSL_GUARDED_BY(mu_);
};

// What Shorten and Lookup have in common: the settings, the incoming
// call, and the options every kv call starts from.
struct KvOp {
  KvOp(std::shared_ptr<const internal::Shared> shared, ServerContext& ctx,
       Completion done)
      : shared(std::move(shared)),
        pending(std::move(done)),
        base(CallOptions::From(ctx)),
        own_deadline(ctx.deadline() == absl::InfiniteFuture()
                         ? absl::Now() + this->shared->options.kv_timeout
                         : absl::InfiniteFuture()) {}

  // Options for a kv call on `key`: the incoming deadline and
  // cancellation (or kv_timeout in all), routed to `key`'s shard.
  CallOptions For(const std::string& key) const {
    CallOptions options = base;
    options.hash_key = key;
    if (own_deadline != absl::InfiniteFuture()) {
      options.timeout = std::max(own_deadline - absl::Now(),
                                 absl::ZeroDuration());
    }
    return options;
  }

  const std::shared_ptr<const internal::Shared> shared;
  PendingCall pending;
  const CallOptions base;
  const absl::Time own_deadline;
};

// When the incoming call ends unanswered, let go of its Completion. The
// callback holds `op` strongly (the reference cycle op -> Completion ->
// call -> callback ends when the Completion is finished, which every path
// does: the call then drops its callback). A weak_ptr would do too, but
// libstdc++'s shared_ptr fast path is invisible to TSan as built here
// (.bazelrc undefines __SANITIZE_THREAD__), which then reports a race.
template <typename Op>
void AbandonOnCancel(ServerContext& ctx, const std::shared_ptr<Op>& op) {
  ctx.OnCancel([op] { op->pending.Abandon(); });
}

// One Lookup: a kv Get.
struct LookupOp : KvOp {
  LookupOp(std::shared_ptr<const internal::Shared> shared, ServerContext& ctx,
           LookupResponse* response, Completion done)
      : KvOp(std::move(shared), ctx, std::move(done)), response(response) {}

  void OnGet(const absl::Status& s) {
    if (s.code() == absl::StatusCode::kNotFound) {
      pending.Finish(absl::NotFoundError(absl::StrCat(
          "code ", Quote(get.key().substr(sizeof(kKeyPrefix) - 1)),
          " not found")));
      return;
    }
    if (!s.ok()) {
      pending.Finish(KvError("Get", get.key(), s));
      return;
    }
    pending.Finish(absl::OkStatus(),
                   [&] { response->set_url(got.entry().value()); });
  }

  LookupResponse* const response;
  GetRequest get;
  GetResponse got;
};

// One Shorten: Put candidate codes create-only until one is ours.
struct ShortenOp : KvOp, std::enable_shared_from_this<ShortenOp> {
  ShortenOp(std::shared_ptr<const internal::Shared> shared,
            ServerContext& ctx, std::string url, ShortenResponse* response,
            Completion done)
      : KvOp(std::move(shared), ctx, std::move(done)),
        url(std::move(url)),
        response(response) {}

  void TryNextCode();
  void OnPut(const absl::Status& s);
  void OnGet(const absl::Status& s);
  void Answer() {
    pending.Finish(absl::OkStatus(), [&] { response->set_code(code); });
  }

  const std::string url;
  ShortenResponse* const response;
  uint32_t attempt = 0;  // Of the candidate in `code`.
  uint32_t vanished = 0;  // Keys that existed, then did not (deleted).
  std::string code;
  PutRequest put;
  PutResponse put_response;
  GetRequest get;
  GetResponse got;
};

void ShortenOp::TryNextCode() {
  if (pending.finished()) return;  // The call ended: start nothing new.
  const ShortenerOptions& options = shared->options;
  if (attempt >= options.max_code_attempts) {
    pending.Finish(absl::ResourceExhaustedError(absl::StrCat(
        "no free code for url ", Quote(url), ": all ",
        options.max_code_attempts,
        " candidate codes (max_code_attempts) are taken by other URLs")));
    return;
  }
  code = options.code_function(url, attempt);
  if (absl::Status s = CheckCode(code); !s.ok()) {
    pending.Finish(absl::InternalError(
        absl::StrCat("code_function: ", s.message())));
    return;
  }
  put.set_key(KvKey(code));
  put.set_value(url);
  put.set_expected_version(0);  // Create-only.
  shared->stub.PutAsync(
      put, &put_response, For(put.key()),
      [self = shared_from_this()](absl::Status s) { self->OnPut(s); });
}

void ShortenOp::OnPut(const absl::Status& s) {
  if (s.ok()) return Answer();
  if (s.code() != absl::StatusCode::kFailedPrecondition) {
    pending.Finish(KvError("Put", put.key(), s));
    return;
  }
  // The code is taken: by this URL (shortened before) or by another.
  if (pending.finished()) return;
  get.set_key(put.key());
  shared->stub.GetAsync(
      get, &got, For(get.key()),
      [self = shared_from_this()](absl::Status s) { self->OnGet(s); });
}

void ShortenOp::OnGet(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kNotFound &&
      ++vanished <= shared->options.max_code_attempts) {
    return TryNextCode();  // Deleted meanwhile: the same code again.
  }
  if (s.code() == absl::StatusCode::kNotFound) {
    pending.Finish(absl::AbortedError(absl::StrCat(
        "kv key \"", get.key(), "\" keeps vanishing between Put and Get")));
    return;
  }
  if (!s.ok()) {
    pending.Finish(KvError("Get", get.key(), s));
    return;
  }
  if (got.entry().value() == url) return Answer();
  ++attempt;  // A collision with another URL.
  TryNextCode();
}

}  // namespace

std::string DefaultCode(absl::string_view url, uint32_t attempt) {
  char salt[4];
  for (int i = 0; i < 4; ++i) salt[i] = static_cast<char>(attempt >> (8 * i));
  uint64_t h = Fnv1a(url, 14695981039346656037ull);
  h = Mix(Fnv1a(absl::string_view(salt, 4), h));
  std::string code(kDefaultCodeLength, '0');
  for (char& c : code) {
    c = kBase62[h % 62];
    h /= 62;
  }
  return code;
}

std::string KvKey(absl::string_view code) {
  return absl::StrCat(kKeyPrefix, code);
}

ChannelOptions KvChannelOptions() {
  ChannelOptions options;
  options.load_balancer = "ring_hash_strict";
  MethodConfig put;
  put.names = {KeyValue::kPutMethod};
  put.retry = RetryPolicy{3, absl::Milliseconds(50), absl::Milliseconds(500),
                          2.0, {absl::StatusCode::kUnavailable}};
  options.service_config.methods.push_back(std::move(put));
  return options;
}

absl::Status CheckUrl(absl::string_view url, size_t max_url_bytes) {
  if (url.empty()) return absl::InvalidArgumentError("url is empty");
  if (url.size() > max_url_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("url of ", url.size(), " bytes exceeds max_url_bytes ",
                     max_url_bytes));
  }
  if (size_t at = InvalidUtf8At(url); at != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("url is not valid UTF-8 (byte ", at, ")"));
  }
  size_t scheme = absl::StartsWithIgnoreCase(url, "http://")    ? 7
                  : absl::StartsWithIgnoreCase(url, "https://") ? 8
                                                                : 0;
  if (scheme == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "url ", Quote(url), " does not start with http:// or https://"));
  }
  for (size_t i = 0; i < url.size(); ++i) {
    unsigned char c = url[i];
    if (c <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("url has a space or control character at byte ", i));
    }
  }
  size_t host_end = std::min(url.find_first_of("/?#", scheme), url.size());
  if (host_end == scheme) {
    return absl::InvalidArgumentError(
        absl::StrCat("url ", Quote(url), " has no host"));
  }
  return absl::OkStatus();
}

absl::Status CheckCode(absl::string_view code) {
  if (code.empty()) return absl::InvalidArgumentError("code is empty");
  bool ok = code.size() <= kMaxCodeBytes &&
            std::all_of(code.begin(), code.end(),
                        [](char c) { return absl::ascii_isalnum(c); });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("code ", Quote(code), " is not 1 to ", kMaxCodeBytes,
                     " characters of [0-9A-Za-z]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ShortenerService>> ShortenerService::Create(
    Channel* kv, ShortenerOptions options) {
  absl::string_view bad;
  if (kv == nullptr) {
    bad = "the kv channel is null";
  } else if (options.max_url_bytes < 1 ||
             options.max_url_bytes > kMaxUrlBytesLimit) {
    bad = "max_url_bytes must be 1 to 1048576 (kv's value limit)";
  } else if (options.max_code_attempts < 1 ||
             options.max_code_attempts > kMaxCodeAttemptsLimit) {
    bad = "max_code_attempts must be 1 to 64";
  } else if (options.kv_timeout <= absl::ZeroDuration()) {
    bad = "kv_timeout must be positive";
  } else if (!options.code_function) {
    bad = "code_function is null";
  }
  if (!bad.empty()) return absl::InvalidArgumentError(bad);
  return std::unique_ptr<ShortenerService>(new ShortenerService(
      std::make_shared<internal::Shared>(kv, std::move(options))));
}

void ShortenerService::ShortenAsync(ServerContext& ctx,
                                    const ShortenRequest& request,
                                    ShortenResponse* response,
                                    Completion done) {
  absl::Status s = CheckUrl(request.url(), shared_->options.max_url_bytes);
  if (!s.ok()) return std::move(done).Finish(std::move(s));
  auto op = std::make_shared<ShortenOp>(shared_, ctx, request.url(), response,
                                        std::move(done));
  AbandonOnCancel(ctx, op);
  op->TryNextCode();
}

void ShortenerService::LookupAsync(ServerContext& ctx,
                                   const LookupRequest& request,
                                   LookupResponse* response, Completion done) {
  absl::Status s = CheckCode(request.code());
  if (!s.ok()) return std::move(done).Finish(std::move(s));
  auto op = std::make_shared<LookupOp>(shared_, ctx, response, std::move(done));
  AbandonOnCancel(ctx, op);
  op->get.set_key(KvKey(request.code()));
  shared_->stub.GetAsync(op->get, &op->got, op->For(op->get.key()),
                         [op](absl::Status s) { op->OnGet(s); });
}

}  // namespace bevrpc::shortener
