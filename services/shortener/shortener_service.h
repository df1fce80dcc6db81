// ShortenerService: bevrpc.shortener.Shortener, a URL shortener whose
// handlers call another service. It stores nothing itself: a URL's code
// lives in the kv service (bevrpc.kv.KeyValue) under the key "code/CODE",
// sharded over kv's replicas by that key (ring_hash_strict), and every kv
// call inherits the incoming call's deadline and cancellation.
//
//   auto kv = bevrpc::Channel::Create(kv_target,
//                                     bevrpc::shortener::KvChannelOptions());
//   auto service = bevrpc::shortener::ShortenerService::Create(kv->get());
//   server.RegisterService(service->get());
//   // Destroy the server first, then the service, then the channel.
//
// How Shorten works: candidate codes come from the URL alone
// (ShortenerOptions::code_function: 7 base62 characters of a stable hash
// of the URL and the attempt number 0, 1, ...). Each candidate is written
// create-only (kv Put with expected_version 0). If the key exists, it is
// read: the same URL means the URL was shortened before, and its code is
// the answer (so Shorten is idempotent); another URL means a collision,
// and the next candidate is tried, up to max_code_attempts
// (RESOURCE_EXHAUSTED after that).
//
// Status codes for the caller: INVALID_ARGUMENT names the bad field;
// Lookup of an unknown code is NOT_FOUND. kv failures keep their code when
// they say something about the kv service the caller can act on
// (UNAVAILABLE: retry; DEADLINE_EXCEEDED; CANCELLED; RESOURCE_EXHAUSTED:
// overload) and become INTERNAL otherwise (a kv INVALID_ARGUMENT or
// UNIMPLEMENTED is this service's bug or a --kv pointing at something that
// is not kv, nothing the caller did), with the kv call's code and message
// in the text.
//
// Both handlers are the callback flavour: they run on the server's I/O
// loop, start a kv call with CallAsync and return, so a call waiting for a
// restarting kv shard holds no thread.
//
// Ownership: the kv channel is borrowed and must outlive the service; the
// service must outlive the server it is registered with. kv calls still
// open when the service is destroyed finish harmlessly (they share the
// service's settings, not the service). The channel must run on loops of
// its own, not on the server's (ChannelOptions::loops).
//
// Threading: thread-safe; handlers run concurrently.
#ifndef BEVRPC_SERVICES_SHORTENER_SHORTENER_SERVICE_H_
#define BEVRPC_SERVICES_SHORTENER_SHORTENER_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/channel.h"
#include "services/kv/kv.bevrpc.h"
#include "services/shortener/shortener.bevrpc.h"

namespace bevrpc::shortener {

// Candidate number `attempt` (0, 1, ...) of `url`'s code. Must be the same
// in every process (all replicas must agree) and return 1 to
// kMaxCodeBytes characters of [0-9A-Za-z].
using CodeFunction =
    std::function<std::string(absl::string_view url, uint32_t attempt)>;

// The default CodeFunction: 7 base62 characters of FNV-1a-64 (with a final
// mix) over the URL and the attempt number. 62^7 is about 3.5e12 codes.
std::string DefaultCode(absl::string_view url, uint32_t attempt);

// Longest code Lookup accepts. Codes are [0-9A-Za-z]{1,16}.
inline constexpr size_t kMaxCodeBytes = 16;

// The kv key of `code`: "code/" + code.
std::string KvKey(absl::string_view code);

// Options for the channel to kv: ring_hash_strict (a key always goes to
// the shard that owns it, and waits for it while it restarts), and
// retries of kv Put on UNAVAILABLE (3 attempts), which is safe here
// because every Put this service makes is create-only: a repeat of one
// that landed fails FAILED_PRECONDITION, which Shorten reads as "already
// there" and resolves with a Get. kv Get is retried by its .proto marking.
ChannelOptions KvChannelOptions();

struct ShortenerOptions {
  // Longest URL Shorten accepts, in bytes; longer ones are
  // INVALID_ARGUMENT. 1 to 1 MiB (kv's value limit). Default: 2048.
  size_t max_url_bytes = 2048;
  // Candidate codes Shorten tries for one URL before it gives up with
  // RESOURCE_EXHAUSTED (each taken by another URL). 1 to 64. Default: 8.
  uint32_t max_code_attempts = 8;
  // How long the kv calls of one Shorten or Lookup may take together when
  // the incoming call has no deadline (with one, they get what is left of
  // it). Positive. Default: 5 s.
  absl::Duration kv_timeout = absl::Seconds(5);
  // Candidate codes. Non-null. Default: DefaultCode.
  CodeFunction code_function = DefaultCode;
};

// Checks a URL as Shorten does: OK, or INVALID_ARGUMENT naming `url`.
absl::Status CheckUrl(absl::string_view url, size_t max_url_bytes);
// Checks a code as Lookup does: OK, or INVALID_ARGUMENT naming `code`.
absl::Status CheckCode(absl::string_view code);

namespace internal {
struct Shared;
}  // namespace internal

class ShortenerService : public Shortener::Service {
 public:
  // `kv` is borrowed and must outlive the service. Options out of range
  // are INVALID_ARGUMENT naming the field.
  static absl::StatusOr<std::unique_ptr<ShortenerService>> Create(
      Channel* kv, ShortenerOptions options = {});

  void ShortenAsync(ServerContext& ctx, const ShortenRequest& request,
                    ShortenResponse* response, Completion done) override;
  void LookupAsync(ServerContext& ctx, const LookupRequest& request,
                   LookupResponse* response, Completion done) override;

 private:
  explicit ShortenerService(std::shared_ptr<const internal::Shared> shared)
      : shared_(std::move(shared)) {}

  // The stub and the options, shared with the calls in progress.
  std::shared_ptr<const internal::Shared> shared_;
};

}  // namespace bevrpc::shortener

#endif  // BEVRPC_SERVICES_SHORTENER_SHORTENER_SERVICE_H_
