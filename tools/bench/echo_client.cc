// echo_client: bevrpc's closed-loop load client for the peer comparison in
// /work/shared/bench/peers (see its README.md for the contract).
//
//   echo_client --host 127.0.0.1 --port 8080 --connections 1
//               --concurrency 64 --payload 64 --duration 5 --warmup 1
//               --threads 1
//
// Calls bevrpc.echo.Echo/Echo with a `--payload`-byte message; a reply of
// another size counts as an error, like a failed call. Values may also be
// written --flag=value. Prints ONE JSON line on stdout (system "bevrpc")
// and the human summary on stderr.
//
// Exit status: 0 after a run (errors are in the JSON line), 1 if the run
// cannot start (e.g. a bad --host), 2 on bad flags.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "rpc/idempotency.h"
#include "services/echo/echo.pb.h"
#include "tools/cli/bench.h"

namespace bevrpc::bench {
namespace {

constexpr char kUsage[] =
    "usage: echo_client --port P [--host H] [--connections C]\n"
    "                   [--concurrency D] [--payload BYTES] [--duration S]\n"
    "                   [--warmup S] [--threads T] [--scheme list|dns]\n"
    "                   [--metrics on|off]\n"
    "\n"
    "  --host         server address (default 127.0.0.1)\n"
    "  --port         server port (required)\n"
    "  --connections  TCP connections (default 1)\n"
    "  --concurrency  calls outstanding in total (default 1)\n"
    "  --payload      request and reply message bytes (default 64)\n"
    "  --duration     measured seconds (default 5)\n"
    "  --warmup       seconds run before measuring (default 1)\n"
    "  --threads      client I/O threads (default 1)\n"
    "  --metrics      client metrics on or off (default on)\n"
    "  --tls_ca FILE, --tls_cert FILE, --tls_key FILE, --tls_server_name NAME\n"
    "                 connect over TLS (ChannelOptions::tls; docs/security.md)\n"
    "  --scheme       connect through the target SCHEME:///HOST:PORT instead\n"
    "                 of HOST:PORT (resolver and balancer overhead)\n"
    "\n"
    "Values may be given as --flag VALUE or --flag=VALUE.\n";

// Below the default 4 MiB max_message_bytes with room for the field header.
constexpr int kMaxPayload = 4 * 1024 * 1024 - 16;
constexpr char kEchoMethod[] = "bevrpc.echo.Echo/Echo";

struct ClientFlags {
  std::string host = "127.0.0.1";
  std::string scheme;  // "" (HOST:PORT), "list" or "dns".
  int port = 0;
  int connections = 1;
  int concurrency = 1;
  int payload = 64;
  double duration = 5;
  double warmup = 1;
  int threads = 1;
  bool metrics = true;  // ChannelOptions::enable_metrics
  // ChannelOptions::tls: --tls_ca, --tls_cert, --tls_key, --tls_server_name.
  transport::TlsClientOptions tls;
};

// Parses an int in [min, max] into *out; on failure sets *error.
bool ParseInt(absl::string_view name, absl::string_view value, int min,
              int max, int* out, std::string* error) {
  if (!absl::SimpleAtoi(value, out) || *out < min || *out > max) {
    *error = absl::StrCat("--", name, ": expected an integer in [", min, ", ",
                          max, "], got '", value, "'");
    return false;
  }
  return true;
}

// Parses seconds, finite, > 0 (or >= 0 if `zero_ok`), at most a day.
bool ParseSeconds(absl::string_view name, absl::string_view value,
                  bool zero_ok, double* out, std::string* error) {
  if (!absl::SimpleAtod(value, out) || !std::isfinite(*out) ||
      *out < 0 || (*out == 0 && !zero_ok) || *out > 86400) {
    *error = absl::StrCat("--", name, ": expected seconds in ",
                          zero_ok ? "[0" : "(0", ", 86400], got '", value,
                          "'");
    return false;
  }
  return true;
}

constexpr absl::string_view kFlagNames[] = {
    "host",    "port",     "connections", "concurrency",
    "payload", "duration", "warmup",      "threads", "scheme", "metrics",
    "tls_ca",  "tls_cert", "tls_key",     "tls_server_name"};

// Sets the known flag `name` from `value`; false (with *error) if bad.
bool SetFlag(absl::string_view name, absl::string_view value, ClientFlags* f,
             std::string* error) {
  if (name == "host") {
    if (value.empty()) *error = "--host: empty";
    f->host = std::string(value);
    return !value.empty();
  }
  if (name == "port") return ParseInt(name, value, 1, 65535, &f->port, error);
  if (name.substr(0, 4) == "tls_") {
    std::string* field = name == "tls_ca"     ? &f->tls.ca_file
                         : name == "tls_cert" ? &f->tls.cert_file
                         : name == "tls_key"  ? &f->tls.key_file
                                              : &f->tls.server_name;
    *field = std::string(value);
    return true;
  }
  if (name == "scheme") {
    if (value != "list" && value != "dns") {
      *error = absl::StrCat("--scheme: \"", value, "\" is not list or dns");
      return false;
    }
    f->scheme = std::string(value);
    return true;
  }
  if (name == "metrics") {
    if (value != "on" && value != "off") {
      *error = absl::StrCat("--metrics: \"", value, "\" is not on or off");
      return false;
    }
    f->metrics = value == "on";
    return true;
  }
  if (name == "connections") {
    return ParseInt(name, value, 1, 100000, &f->connections, error);
  }
  if (name == "concurrency") {
    return ParseInt(name, value, 1, 1000000, &f->concurrency, error);
  }
  if (name == "payload") {
    return ParseInt(name, value, 0, kMaxPayload, &f->payload, error);
  }
  if (name == "duration") {
    return ParseSeconds(name, value, false, &f->duration, error);
  }
  if (name == "warmup") return ParseSeconds(name, value, true, &f->warmup, error);
  return ParseInt(name, value, 1, 1024, &f->threads, error);  // "threads"
}

// Accepts "--name value" and "--name=value" for the contract's flags only.
bool ParseFlags(int argc, char** argv, ClientFlags* f, std::string* error) {
  bool have_port = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--" || arg.size() == 2) {
      *error = absl::StrCat("unexpected argument '", arg, "'");
      return false;
    }
    absl::string_view name = arg.substr(2);
    absl::string_view value;
    size_t eq = name.find('=');
    if (eq != absl::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (std::find(std::begin(kFlagNames), std::end(kFlagNames), name) ==
        std::end(kFlagNames)) {
      *error = absl::StrCat("unknown flag --", name);
      return false;
    }
    if (eq == absl::string_view::npos) {
      if (i + 1 >= argc) {
        *error = absl::StrCat("--", name, ": missing value");
        return false;
      }
      value = argv[++i];
    }
    if (!SetFlag(name, value, f, error)) return false;
    have_port |= name == "port";
  }
  if (!have_port) *error = "--port is required";
  return have_port;
}

std::string Address(const ClientFlags& f) {
  bool v6 = f.host.find(':') != std::string::npos && f.host[0] != '[';
  std::string address = v6 ? absl::StrCat("[", f.host, "]:", f.port)
                            : absl::StrCat(f.host, ":", f.port);
  if (f.scheme.empty()) return address;
  return absl::StrCat(f.scheme, ":///", address);
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  ClientFlags flags;
  std::string error;
  if (!ParseFlags(argc, argv, &flags, &error)) {
    std::fprintf(stderr, "echo_client: %s\n\n%s", error.c_str(), kUsage);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  // As a client linking the generated echo code would (Echo is
  // NO_SIDE_EFFECTS): its calls then carry the default retry policy, so
  // the figures include the retry bookkeeping of a call that succeeds.
  RegisterIdempotency(kEchoMethod, Idempotency::kNoSideEffects);
  echo::EchoRequest request;
  request.set_message(std::string(flags.payload, 'x'));
  echo::EchoResponse response_prototype;
  cli::BenchOptions options;
  options.address = Address(flags);
  options.method = kEchoMethod;
  options.request = &request;
  options.response_prototype = &response_prototype;
  options.connections = flags.connections;
  options.concurrency = flags.concurrency;
  options.duration = absl::Seconds(flags.duration);
  options.warmup = absl::Seconds(flags.warmup);
  options.threads = flags.threads;
  options.enable_metrics = flags.metrics;
  options.tls = flags.tls;
  const size_t payload = static_cast<size_t>(flags.payload);
  options.check_response = [payload](const google::protobuf::Message& m) {
    const auto* reply =
        google::protobuf::DynamicCastToGenerated<echo::EchoResponse>(&m);
    return reply != nullptr && reply->message().size() == payload;
  };

  absl::StatusOr<cli::BenchResult> result = cli::RunBench(options);
  if (!result.ok()) {
    std::fprintf(stderr, "echo_client: %s\n",
                 result.status().ToString().c_str());
    return 1;
  }
  std::fputs(cli::FormatSummary(*result).c_str(), stderr);
  std::fputs(cli::FormatJsonLine(*result, "bevrpc", flags.connections,
                                 flags.concurrency, flags.payload,
                                 result->threads)
                 .c_str(),
             stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace bevrpc::bench

int main(int argc, char** argv) { return bevrpc::bench::Main(argc, argv); }
