// shortener_server: serves bevrpc.shortener.Shortener, a URL shortener that
// keeps its codes in the kv service.
//
//   shortener_server --port=0 --kv=list:///127.0.0.1:7001,127.0.0.1:7002
//   bevrpc call 127.0.0.1:PORT bevrpc.shortener.Shortener/Shorten
//       '{"url":"https://example.com/"}'
//
// --kv=TARGET (required) is any target (HOST:PORT, list:///, file:///,
// etcd://) listing the kv replicas; keys are sharded over them with
// ring_hash_strict, so every shortener replica must see the same list,
// with the same `id`s where the target carries them. --kv_timeout bounds
// the kv calls of a request that carries no deadline; --max_url_bytes and
// --max_code_attempts are ShortenerOptions. A missing or bad flag exits
// with status 2 and a message naming it. Everything else is the shared
// server main (services/builtin/server_main.h).
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "rpc/naming/target.h"
#include "services/builtin/server_main.h"
#include "services/shortener/shortener_service.h"

ABSL_FLAG(std::string, kv, "",
          "target of the kv service (required): HOST:PORT, list:///..., "
          "file:///..., etcd://H:P/PREFIX");
ABSL_FLAG(absl::Duration, kv_timeout, absl::Seconds(5),
          "how long the kv calls of one request may take together when the "
          "request carries no deadline of its own");
ABSL_FLAG(int64_t, max_url_bytes, 2048,
          "longest URL Shorten accepts, in bytes (1 to 1048576)");
ABSL_FLAG(int64_t, max_code_attempts, 8,
          "candidate codes Shorten tries for a URL before RESOURCE_EXHAUSTED "
          "(1 to 64)");

namespace {

using bevrpc::shortener::ShortenerOptions;
using bevrpc::shortener::ShortenerService;

// The kv channel and the service, from the flags; errors name the flag.
absl::Status Setup(std::unique_ptr<bevrpc::Channel>* kv,
                   std::unique_ptr<ShortenerService>* service) {
  const std::string target = absl::GetFlag(FLAGS_kv);
  if (target.empty()) {
    return absl::InvalidArgumentError(
        "--kv is required: the kv service's target (e.g. --kv=127.0.0.1:7001 "
        "or --kv=file:///PATH/endpoints/kv)");
  }
  if (auto t = bevrpc::naming::ParseTarget(target); !t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kv=", target, ": ", t.status().message()));
  }
  ShortenerOptions options;
  options.kv_timeout = absl::GetFlag(FLAGS_kv_timeout);
  int64_t max_url = absl::GetFlag(FLAGS_max_url_bytes);
  int64_t attempts = absl::GetFlag(FLAGS_max_code_attempts);
  if (options.kv_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--kv_timeout must be positive");
  }
  if (max_url < 1 || max_url > 1024 * 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_url_bytes=", max_url, ": must be 1 to 1048576"));
  }
  if (attempts < 1 || attempts > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_code_attempts=", attempts, ": must be 1 to 64"));
  }
  options.max_url_bytes = static_cast<size_t>(max_url);
  options.max_code_attempts = static_cast<uint32_t>(attempts);
  auto channel = bevrpc::Channel::Create(
      target, bevrpc::shortener::KvChannelOptions());
  if (!channel.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--kv=", target, ": ", channel.status().message()));
  }
  *kv = *std::move(channel);
  auto created = ShortenerService::Create(kv->get(), options);
  if (!created.ok()) return created.status();
  *service = *std::move(created);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // Declared first, destroyed last: outlives the service and the server.
  std::unique_ptr<bevrpc::Channel> kv;
  std::unique_ptr<ShortenerService> shortener;
  return bevrpc::builtin::ServerMain(
      argc, argv, "shortener_server",
      [&](bevrpc::Server& server, bevrpc::builtin::HealthService&) {
        // Flags are parsed by now; a bad one of ours is INVALID_ARGUMENT,
        // which ServerMain turns into exit 2 like a bad flag of its own.
        if (absl::Status s = Setup(&kv, &shortener); !s.ok()) return s;
        return server.RegisterService(shortener.get());
      });
}
