#include "tools/cli/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/common.h"
#include "rpc/channel.h"
#include "rpc/client_stream.h"
#include "rpc/internal/read_file.h"
#include "rpc/service_config.h"
#include "rpc/status.h"
#include "transport/http_client.h"
#include "transport/loop_pool.h"
#include "transport/sync.h"
#include "services/builtin/health.pb.h"
#include "tools/cli/descriptor_source.h"
#include "tools/cli/json_codec.h"
#include "tools/cli/bench.h"
#include "tools/cli/prom_text.h"
#include "tools/cli/stats.h"

namespace bevrpc::cli {
namespace {

// ---------------------------------------------------------------------------
// Help texts.

constexpr char kMainHelp[] = R"(bevrpc: call and inspect bevrpc servers.

usage: bevrpc COMMAND [ARGS] [FLAGS]

commands:
  list TARGET [SERVICE]        services, or a service's methods
  describe TARGET SYMBOL       a service, method, message or enum as .proto
  call TARGET METHOD [JSON]    call a method with a JSON request
  health TARGET [SERVICE]      exit 0 if SERVING (a container probe)
  bench TARGET METHOD [JSON]   load-test a method
  resolve TARGET [--watch]     the endpoints TARGET names, and their state
  stats TARGET [--watch]       per-method QPS, errors and latency of servers
  completion bash              print a bash completion script

TARGET is HOST:PORT, [V6]:PORT, dns:///HOST:PORT, list:///H:P,H:P...,
file:///PATH or etcd://H:P/PREFIX (docs/naming.md); --lb NAME picks the
load balancer (round_robin, pick_first, weighted_round_robin, least_loaded,
ring_hash). Types come from the server's reflection service, or from
--proto FILE [-I DIR] when reflection is off.

TLS (every command that connects; docs/security.md):
  --tls_ca FILE           connect over TLS; verify the server against these
                          PEM CAs (empty with another --tls_* flag: the
                          system store)
  --tls_cert FILE         client certificate (mutual TLS), with --tls_key
  --tls_key FILE          the client certificate's private key
  --tls_server_name NAME  verify (and send as SNI) NAME instead of the
                          target's host, e.g. when dialing an IP address
Run 'bevrpc COMMAND --help' for a command's flags and examples.
)";

constexpr char kResolveHelp[] = R"(usage: bevrpc resolve TARGET [--watch] [--timeout D]

Prints the endpoints TARGET names, one per line: HOST:PORT, then the state
of a connection to it (READY, CONNECTING, TRANSIENT_FAILURE, IDLE, or
EJECTED: out of rotation after failed calls), then its metadata (weight=,
zone=, id=, version=) when set, and ejections=N once it was ejected. Each endpoint is
probed with a health check first, so the state is real, not IDLE.
--watch keeps printing the list (a blank line between lists) whenever it
or a state changes, until interrupted. Exit 0 if the target resolved, 78
if resolution failed (the cause on stderr).

flags:
  --watch        keep printing changes
  --timeout D    how long to wait for the first list (default 10s)

examples:
  bevrpc resolve localhost:8080
  bevrpc resolve etcd://127.0.0.1:2379/bevrpc/services/echo --watch
)";

constexpr char kStatsHelp[] = R"(usage: bevrpc stats TARGET [--watch] [--interval D] [--count N] [--client]
                    [--path P] [--timeout D]

Per-method calls per second, error rate (share of calls not OK), p50 and
p99 latency, calls in flight and calls so far of the server at TARGET, read
from its /metrics page: a server answers HTTP on its RPC port unless it was
started with --http=off (with --admin_address, give that HOST:PORT). Rates
and quantiles are over --interval between two reads. A target naming
several endpoints (dns:///, list:///, file:///, etcd://) prints a table per
endpoint. --watch prints new tables every interval until interrupted (or
--count tables). --client shows the calls the server made to others
(bevrpc_client_*) instead of those it answered. Exit 0 when every endpoint
answered, else 64 + the canonical code of the first failure (78: not
reachable).

flags:
  --watch        keep printing, every interval
  --interval D   time between reads (default 1s)
  --count N      with --watch: stop after N tables
  --client       the server's outgoing calls
  --path P       the metrics page (default /metrics)
  --timeout D    how long to wait for endpoints and each read (default 10s)

examples:
  bevrpc stats 127.0.0.1:8080
  bevrpc stats file:///tmp/state/endpoints/shortener --watch
)";

constexpr char kListHelp[] = R"(usage: bevrpc list ADDR [SERVICE] [--proto FILE -I DIR] [--timeout D]

Lists the services of the server at ADDR, or the methods of SERVICE with
their request and response types. With --proto, lists the services the
files define instead (ADDR is not asked; a note on stderr says so).

examples:
  bevrpc list 127.0.0.1:8080
  bevrpc list 127.0.0.1:8080 bevrpc.echo.Echo
)";

constexpr char kDescribeHelp[] = R"(usage: bevrpc describe ADDR SYMBOL [--proto FILE -I DIR] [--timeout D]

Prints a service, method, message or enum as .proto text.

examples:
  bevrpc describe 127.0.0.1:8080 bevrpc.echo.Echo
  bevrpc describe 127.0.0.1:8080 bevrpc.echo.Echo/Echo
  bevrpc describe 127.0.0.1:8080 bevrpc.echo.EchoRequest
)";

constexpr char kCallHelp[] = R"(usage: bevrpc call ADDR package.Service/Method [JSON | -d @FILE | -d @-] [flags]

Calls METHOD with a JSON request ({} if none) and prints the response.

Streaming methods: a server stream prints each response as one JSON line as
it arrives. Client and bidirectional streams take their requests as NDJSON
(one JSON object per line) from the JSON argument, -d @FILE, or stdin (-d @-,
or no request given), and send each line as it is read, so a bidi call can
be driven interactively; the responses are printed as they arrive. A line
that does not parse ends the input (exit 3, naming the line): a bidi call is
half-closed, so the answers to the lines before it are still printed; a
client-streaming call is cancelled.

flags:
  -d, --data JSON|@FILE|@-   the request (instead of the JSON argument); @- reads stdin
  --format json|text|binary  how to print the response (default json)
  --emit-defaults            print fields that have their default value
  --timeout DURATION         the call's deadline, e.g. 500ms, 2s (default: none)
  --metadata KEY=VALUE       a request header; repeatable
  --proto FILE, -I DIR       read types from .proto files instead of reflection
  --service_config JSON|@FILE  timeouts, retries, hedging (gRPC's methodConfig JSON)
  -v, --verbose              print on stderr the request headers sent ("> k: v"),
                             the response headers ("< k: v") and trailers
                             ("< [trailer] k: v"); bytes that are not text as \xHH

examples:
  bevrpc call 127.0.0.1:8080 bevrpc.echo.Echo/Echo '{"message":"hi"}'
  echo '{"message":"hi"}' | bevrpc call 127.0.0.1:8080 bevrpc.echo.Echo/Echo -d @-
  bevrpc call [::1]:8080 bevrpc.echo.Echo/Echo '{}' --timeout 1s --metadata x-id=7 -v
  bevrpc call 127.0.0.1:8080 bevrpc.echo.Echo/Expand '{"count":3,"size":5}'
  printf '{"message":"a"}\n{"message":"b"}\n' | bevrpc call 127.0.0.1:8080 bevrpc.echo.Echo/Chat
)";

constexpr char kBenchHelp[] = R"(usage: bevrpc bench ADDR package.Service/Method [JSON | -d @FILE | -d @-] [flags]

Load-tests METHOD with one request, over real connections, and prints QPS,
latency percentiles, a latency histogram and errors by status code. A live
progress line goes to stderr on a terminal.

flags:
  -c, --concurrency N   closed loop: calls outstanding in total (default 1)
  --connections N       TCP connections (default 1)
  --rps R               open loop at R calls/s instead (latency from the schedule)
  -n, --calls N         stop after N measured calls
  -z, --duration D      measured time (default 5s; 1h cap with -n)
  --warmup D            unmeasured warm-up first (default 1s)
  --threads N           client I/O threads (default 1)
  --timeout D           per-call deadline
  --metadata KEY=VALUE  a request header; repeatable
  --service_config JSON|@FILE  timeouts, retries, hedging (gRPC's methodConfig
                        JSON); idempotent methods are retried on UNAVAILABLE
                        without one
  --json                print one JSON line (the benchmark-harness contract)
  --proto FILE, -I DIR  types from .proto files instead of reflection

Exit status 0 if every call succeeded, 1 if some failed.

examples:
  bevrpc bench 127.0.0.1:8080 bevrpc.echo.Echo/Echo '{"message":"hi"}' -c 64 -z 10s
  bevrpc bench 127.0.0.1:8080 bevrpc.echo.Echo/Echo '{}' --rps 2000 -z 5s --json
)";

constexpr char kHealthHelp[] = R"(usage: bevrpc health ADDR [SERVICE] [--timeout D]

Checks the health service. Exit 0 if SERVING, 1 if NOT_SERVING or UNKNOWN,
64 + code if the check itself fails (69 NOT_FOUND: unknown service;
78 UNAVAILABLE: server unreachable).

examples:
  bevrpc health 127.0.0.1:8080
  bevrpc health 127.0.0.1:8080 bevrpc.echo.Echo
)";

constexpr char kCompletionHelp[] = R"(usage: bevrpc completion bash

Prints a bash completion script for bevrpc.

example:
  bevrpc completion bash > /etc/bash_completion.d/bevrpc
  source <(bevrpc completion bash)
)";

constexpr char kCompletion[] = R"(# bash completion for bevrpc. Install with:
#   bevrpc completion bash > /etc/bash_completion.d/bevrpc
_bevrpc() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "list describe call health bench resolve stats completion --help" -- "$cur"))
    return
  fi
  case "${COMP_WORDS[1]}" in
    call) COMPREPLY=($(compgen -W "--data --format --emit-defaults --timeout --metadata --proto -I --lb --service_config --tls_ca --tls_cert --tls_key --tls_server_name --verbose --help" -- "$cur")) ;;
    bench) COMPREPLY=($(compgen -W "--data --concurrency --connections --rps --calls --duration --warmup --threads --json --timeout --metadata --proto -I --lb --service_config --tls_ca --tls_cert --tls_key --tls_server_name --help" -- "$cur")) ;;
    list|describe|health) COMPREPLY=($(compgen -W "--timeout --proto -I --lb --help" -- "$cur")) ;;
    resolve) COMPREPLY=($(compgen -W "--watch --timeout --help" -- "$cur")) ;;
    stats) COMPREPLY=($(compgen -W "--watch --interval --count --client --path --timeout --help" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash" -- "$cur")) ;;
  esac
}
complete -F _bevrpc bevrpc
)";

// ---------------------------------------------------------------------------
// Argument parsing.

struct Flag {
  const char* name;       // "--timeout"
  const char* short_name; // "-d" or nullptr
  bool takes_value;
};

struct Args {
  std::vector<std::string> positional;
  std::multimap<std::string, std::string> flags;  // By long name.

  bool Has(const std::string& name) const { return flags.count(name) != 0; }
  std::string Get(const std::string& name, std::string fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    auto range = flags.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
    return out;
  }
};

const std::vector<Flag> kCommonFlags = {
    {"--timeout", nullptr, true},  {"--proto", nullptr, true},
    {"--import-path", "-I", true}, {"--help", "-h", false},
    {"--lb", nullptr, true},       {"--service_config", nullptr, true},
    {"--tls_ca", nullptr, true},   {"--tls_cert", nullptr, true},
    {"--tls_key", nullptr, true},  {"--tls_server_name", nullptr, true},
};

// --tls_ca, --tls_cert, --tls_key, --tls_server_name (any one turns TLS on).
transport::TlsClientOptions TlsFlags(const Args& args) {
  transport::TlsClientOptions tls;
  if (args.Has("--tls_ca")) tls.ca_file = args.Get("--tls_ca");
  if (args.Has("--tls_cert")) tls.cert_file = args.Get("--tls_cert");
  if (args.Has("--tls_key")) tls.key_file = args.Get("--tls_key");
  if (args.Has("--tls_server_name")) {
    tls.server_name = args.Get("--tls_server_name");
  }
  return tls;
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               std::vector<Flag> flags) {
  flags.insert(flags.end(), kCommonFlags.begin(), kCommonFlags.end());
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.size() < 2 || a[0] != '-' || a == "-") {
      args.positional.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool has_value = false;
    size_t eq = a.find('=');
    if (absl::StartsWith(a, "--") && eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    } else if (!absl::StartsWith(a, "--") && a.size() > 2) {
      name = a.substr(0, 2);  // -I/dir, -c16
      value = a.substr(2);
      has_value = true;
    }
    const Flag* flag = nullptr;
    for (const Flag& f : flags) {
      if (name == f.name || (f.short_name && name == f.short_name)) flag = &f;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", name));
    }
    if (flag->takes_value && !has_value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag ", name, " needs a value"));
      }
      value = argv[++i];
    } else if (!flag->takes_value && has_value) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag ", flag->name, " takes no value"));
    }
    args.flags.emplace(flag->name, value);
  }
  return args;
}

// ---------------------------------------------------------------------------
// Shared plumbing.

struct Env {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

int Fail(const Env& env, int code, absl::string_view message) {
  env.err << "bevrpc: " << message << "\n";
  return code;
}

int FailStatus(const Env& env, const absl::Status& s, absl::string_view what) {
  env.err << "bevrpc: " << what << ": " << StatusCodeName(s.code()) << ": "
          << s.message() << "\n";
  return kExitRpcBase + static_cast<int>(s.code());
}

// `bytes` for a terminal: valid UTF-8 text as it is, except control
// characters; those, backslashes and bytes that are not UTF-8 (binary
// metadata, a Latin-1 status message) as \xHH.
std::string Printable(absl::string_view bytes) {
  std::string out;
  while (!bytes.empty()) {
    const int valid = google::protobuf::internal::UTF8SpnStructurallyValid(
        google::protobuf::StringPiece(bytes.data(), bytes.size()));
    for (char c : bytes.substr(0, valid)) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f || c == '\\') {
        absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
      } else {
        out += c;
      }
    }
    bytes.remove_prefix(valid);
    if (!bytes.empty()) {
      absl::StrAppend(&out, "\\x",
                      absl::Hex(static_cast<unsigned char>(bytes[0]),
                                absl::kZeroPad2));
      bytes.remove_prefix(1);
    }
  }
  return out;
}

// -v: request headers as sent ("> "), response headers as received ("< "),
// and trailers labelled ("< [trailer] "), values through Printable().
void PrintMetadata(const Env& env, absl::string_view prefix,
                   const Metadata& metadata) {
  for (const auto& [k, v] : metadata) {
    env.err << prefix << k << ": " << Printable(v) << "\n";
  }
}

// A failed call's status on stderr: "CODE: message".
int FailCall(const Env& env, const absl::Status& s) {
  env.err << StatusCodeName(s.code()) << ": " << Printable(s.message())
          << "\n";
  return kExitRpcBase + static_cast<int>(s.code());
}

int UsageError(const Env& env, absl::string_view message, const char* help) {
  env.err << "bevrpc: " << message << "\n\n" << help;
  return kExitUsage;
}

absl::StatusOr<absl::Duration> ParsePositiveDuration(const std::string& text,
                                                     const char* flag) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad ", flag, " \"", text, "\" (a duration such as 500ms or 2s)"));
  }
  return d;
}

// --service_config: inline JSON, or @FILE.
absl::StatusOr<ServiceConfig> ServiceConfigFlag(const Args& args) {
  std::string text = args.Get("--service_config");
  if (!text.empty() && text[0] == '@') {
    absl::StatusOr<std::string> file =
        internal::ReadFileToString(text.substr(1));
    if (!file.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--service_config: cannot read ", text.substr(1)));
    }
    text = *std::move(file);
  }
  absl::StatusOr<ServiceConfig> config = ParseServiceConfig(text);
  if (!config.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--service_config: ", config.status().message()));
  }
  return config;
}

// The connection, the descriptor source and the per-call options every
// remote command needs.
struct Session {
  std::unique_ptr<Channel> channel;
  std::unique_ptr<DescriptorSource> source;
  CallOptions options;
  // What the channel was opened with (bench opens its own).
  ChannelOptions channel_options;
  // Reflection lookups and health checks: --timeout, else 10 s. (For
  // `call`, --timeout is the call's own deadline and lookups keep 10 s.)
  absl::Duration rpc_timeout = absl::Seconds(10);
};

// Returns 0 and fills `session`, or an exit code after printing the error.
int OpenSession(const Env& env, const Args& args, const char* help,
                bool timeout_is_for_the_call, Session* session) {
  if (args.Has("--timeout")) {
    auto d = ParsePositiveDuration(args.Get("--timeout"), "--timeout");
    if (!d.ok()) return UsageError(env, d.status().message(), help);
    if (timeout_is_for_the_call) {
      session->options.timeout = *d;
    } else {
      session->rpc_timeout = *d;
    }
  }
  ChannelOptions channel_options;
  channel_options.tls = TlsFlags(args);
  if (args.Has("--lb")) channel_options.load_balancer = args.Get("--lb");
  if (args.Has("--service_config")) {
    absl::StatusOr<ServiceConfig> config = ServiceConfigFlag(args);
    if (!config.ok()) return UsageError(env, config.status().message(), help);
    channel_options.service_config = *std::move(config);
  }
  auto channel = Channel::Create(args.positional[0], channel_options);
  if (!channel.ok()) {
    // A target that does not parse, or a host that does not resolve.
    return Fail(env, kExitUsage, channel.status().message());
  }
  session->channel = *std::move(channel);
  session->channel_options = std::move(channel_options);
  if (args.Has("--proto")) {
    auto source = DescriptorSource::FromProtoFiles(args.All("--proto"),
                                                   args.All("--import-path"));
    if (!source.ok()) return Fail(env, kExitBadInput, source.status().message());
    session->source = *std::move(source);
  } else {
    session->source = DescriptorSource::FromReflection(session->channel.get(),
                                                       session->rpc_timeout);
  }
  return 0;
}

// Exit code for a failed descriptor lookup: the server's own status when
// the lookup call failed, "bad input" when the name is simply unknown.
int FailLookup(const Env& env, const absl::Status& s, const std::string& addr) {
  if (s.code() == absl::StatusCode::kNotFound ||
      s.code() == absl::StatusCode::kInvalidArgument) {
    return Fail(env, kExitBadInput, s.message());
  }
  return FailStatus(env, s, absl::StrCat("cannot query ", addr));
}

// ---------------------------------------------------------------------------
// Commands.

int List(const Env& env, const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {});
  if (!args.ok()) return UsageError(env, args.status().message(), kListHelp);
  if (args->Has("--help")) return (env.out << kListHelp, kExitOk);
  if (args->positional.empty() || args->positional.size() > 2) {
    return UsageError(env, "list needs ADDR and an optional SERVICE", kListHelp);
  }
  Session session;
  if (int rc = OpenSession(env, *args, kListHelp, false, &session)) return rc;
  const std::string& addr = args->positional[0];
  if (args->positional.size() == 1) {
    auto services = session.source->ListServices();
    if (!services.ok()) return FailLookup(env, services.status(), addr);
    if (args->Has("--proto")) {
      env.err << "bevrpc: the services defined in the --proto files; " << addr
              << " was not asked which it serves\n";
    }
    for (const std::string& s : *services) env.out << s << "\n";
    return kExitOk;
  }
  auto service = session.source->FindService(args->positional[1]);
  if (!service.ok()) return FailLookup(env, service.status(), addr);
  for (int i = 0; i < (*service)->method_count(); ++i) {
    const auto* m = (*service)->method(i);
    env.out << (*service)->full_name() << "/" << m->name() << "("
            << (m->client_streaming() ? "stream " : "")
            << m->input_type()->full_name() << ") returns ("
            << (m->server_streaming() ? "stream " : "")
            << m->output_type()->full_name() << ")\n";
  }
  return kExitOk;
}

int Describe(const Env& env, const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {});
  if (!args.ok()) return UsageError(env, args.status().message(), kDescribeHelp);
  if (args->Has("--help")) return (env.out << kDescribeHelp, kExitOk);
  if (args->positional.size() != 2) {
    return UsageError(env, "describe needs ADDR and SYMBOL", kDescribeHelp);
  }
  Session session;
  if (int rc = OpenSession(env, *args, kDescribeHelp, false, &session)) return rc;
  auto text = session.source->Describe(args->positional[1]);
  if (!text.ok()) return FailLookup(env, text.status(), args->positional[0]);
  env.out << *text;
  return kExitOk;
}

// Reads the request text from the JSON argument or -d.
absl::StatusOr<std::string> RequestText(const Env& env, const Args& args) {
  if (args.Has("--data")) {
    if (args.positional.size() > 2) {
      return absl::FailedPreconditionError(
          "give the request as JSON or -d, not both");
    }
    std::string data = args.Get("--data");
    if (data == "@-") {
      return std::string(std::istreambuf_iterator<char>(env.in), {});
    }
    if (absl::StartsWith(data, "@")) {
      absl::StatusOr<std::string> file =
          internal::ReadFileToString(data.substr(1));
      if (!file.ok()) {
        return absl::NotFoundError(
            absl::StrCat("cannot read request file ", data.substr(1)));
      }
      return file;
    }
    return data;
  }
  return args.positional.size() == 3 ? args.positional[2] : "{}";
}

// Adds --metadata KEY=VALUE flags to `metadata`; false (after printing) on
// a malformed one.
bool ParseMetadataFlags(const Env& env, const Args& args, const char* help,
                        Metadata* metadata, int* rc) {
  for (const std::string& kv : args.All("--metadata")) {
    std::pair<std::string, std::string> p =
        absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty() || !absl::StrContains(kv, '=')) {
      *rc = UsageError(
          env, absl::StrCat("bad --metadata \"", kv, "\" (KEY=VALUE)"), help);
      return false;
    }
    (*metadata)[p.first] = p.second;
  }
  return true;
}

// A method and its request, resolved and parsed: what call and bench share.
struct Prepared {
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::unique_ptr<google::protobuf::Message> request;
  std::unique_ptr<google::protobuf::Message> response;
  std::string wire_name;  // "package.Service/Method"
};

// Returns 0 and fills `p`, or an exit code after printing the error.
int Prepare(const Env& env, const Args& args, const char* help,
            Session& session, Prepared* p) {
  const std::string& addr = args.positional[0];
  auto method = session.source->FindMethod(args.positional[1]);
  if (!method.ok()) return FailLookup(env, method.status(), addr);
  p->wire_name =
      absl::StrCat((*method)->service()->full_name(), "/", (*method)->name());
  if ((*method)->client_streaming()) {
    // NDJSON, read and parsed line by line as it is sent (CallStream()).
    p->method = *method;
    p->request.reset(session.source->NewMessage((*method)->input_type()));
    p->response.reset(session.source->NewMessage((*method)->output_type()));
    return 0;
  }
  auto text = RequestText(env, args);
  if (text.status().code() == absl::StatusCode::kFailedPrecondition) {
    return UsageError(env, text.status().message(), help);
  }
  if (!text.ok()) return Fail(env, kExitBadInput, text.status().message());
  p->method = *method;
  p->request.reset(session.source->NewMessage((*method)->input_type()));
  p->response.reset(session.source->NewMessage((*method)->output_type()));
  absl::Status parsed = ParseJsonRequest(*text, p->request.get());
  if (!parsed.ok()) return Fail(env, kExitBadInput, parsed.message());
  return 0;
}

MethodKind KindOf(const google::protobuf::MethodDescriptor& m) {
  if (m.client_streaming() && m.server_streaming()) {
    return MethodKind::kBidiStreaming;
  }
  if (m.client_streaming()) return MethodKind::kClientStreaming;
  return m.server_streaming() ? MethodKind::kServerStreaming
                              : MethodKind::kUnary;
}

// Where a client stream's NDJSON comes from: the JSON argument or -d
// (whole text), or `env.in` line by line (-d @-, or nothing given).
class RequestLines {
 public:
  RequestLines(const Env& env, const Args& args) : in_(env.in) {
    std::string data = args.Get("--data", "");
    if (args.positional.size() == 3) {
      text_ = args.positional[2];
      whole_ = true;
    } else if (args.Has("--data") && data != "@-") {
      absl::StatusOr<std::string> text = RequestText(env, args);
      if (text.ok()) {
        text_ = *std::move(text);
      } else {
        error_ = text.status();
      }
      whole_ = true;
    }
  }
  const absl::Status& error() const { return error_; }

  // The next non-blank line; false at the end.
  bool Next(std::string* line) {
    while (true) {
      if (whole_) {
        if (pos_ >= text_.size()) return false;
        size_t end = text_.find('\n', pos_);
        if (end == std::string::npos) end = text_.size();
        *line = text_.substr(pos_, end - pos_);
        pos_ = end + 1;
      } else if (!std::getline(in_, *line)) {
        return false;
      }
      ++number_;
      if (!absl::StripAsciiWhitespace(*line).empty()) return true;
    }
  }
  int number() const { return number_; }

 private:
  std::istream& in_;
  bool whole_ = false;
  std::string text_;
  size_t pos_ = 0;
  int number_ = 0;
  absl::Status error_;
};

// A streaming call: sends the request(s), prints each response as it
// arrives, one per line.
int CallStream(const Env& env, const Args& args, OutputFormat format,
               Session& session, Prepared& p) {
  const MethodKind kind = KindOf(*p.method);
  const bool client_streams = p.method->client_streaming();
  RequestLines lines(env, args);
  if (!lines.error().ok()) {
    return Fail(env, kExitBadInput, lines.error().message());
  }
  auto stream = DynamicClientStream::Open(
      *session.channel, p.wire_name, kind,
      client_streams ? nullptr : p.request.get(), *p.response,
      session.options);
  absl::Status bad_line;  // Written by the sender, read after join().
  std::thread sender;
  if (client_streams) {
    sender = std::thread([&] {
      std::unique_ptr<google::protobuf::Message> request(p.request->New());
      std::string line;
      while (lines.Next(&line)) {
        request->Clear();
        absl::Status parsed = ParseJsonRequest(line, request.get());
        if (!parsed.ok()) {
          bad_line = absl::InvalidArgumentError(
              absl::StrCat("request line ", lines.number(), ": ",
                           parsed.message()));
          // A bidi call is half-closed, so that the answers to the lines
          // already sent still arrive and are printed; a client-streaming
          // call is cancelled, since its one answer would cover only part
          // of the input.
          if (kind == MethodKind::kBidiStreaming) {
            stream->CloseSend();
          } else {
            stream->Cancel();
          }
          return;
        }
        if (!stream->WriteBlocking(*request).ok()) return;  // Call ended.
      }
      stream->CloseSend();
    });
  }
  google::protobuf::Message* response = p.response.get();
  absl::Status print_error;
  while (stream->Read(response)) {
    auto out = FormatMessage(*response, format, args.Has("--emit-defaults"));
    if (!out.ok()) {
      print_error = out.status();
      stream->Cancel();
      break;
    }
    env.out << *out;
    if (format == OutputFormat::kJson) env.out << "\n";
    env.out.flush();
  }
  absl::Status s = stream->Finish();
  if (sender.joinable()) sender.join();
  if (args.Has("--verbose")) {
    PrintMetadata(env, "< ", stream->headers());
    PrintMetadata(env, "< [trailer] ", stream->trailers());
  }
  if (!bad_line.ok()) return Fail(env, kExitBadInput, bad_line.message());
  if (!print_error.ok()) {
    return Fail(env, kExitBadInput, print_error.message());
  }
  if (!s.ok()) return FailCall(env, s);
  return kExitOk;
}

int Call(const Env& env, const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {{"--data", "-d", true},
                               {"--format", nullptr, true},
                               {"--emit-defaults", nullptr, false},
                               {"--metadata", nullptr, true},
                               {"--verbose", "-v", false}});
  if (!args.ok()) return UsageError(env, args.status().message(), kCallHelp);
  if (args->Has("--help")) return (env.out << kCallHelp, kExitOk);
  if (args->positional.size() < 2 || args->positional.size() > 3) {
    return UsageError(env, "call needs ADDR, METHOD and an optional JSON request",
                      kCallHelp);
  }
  auto format = ParseOutputFormat(args->Get("--format", "json"));
  if (!format.ok()) return UsageError(env, format.status().message(), kCallHelp);
  Session session;
  if (int rc = OpenSession(env, *args, kCallHelp, true, &session)) return rc;
  int rc = 0;
  if (!ParseMetadataFlags(env, *args, kCallHelp, &session.options.metadata,
                          &rc)) {
    return rc;
  }
  Prepared p;
  if (int rc = Prepare(env, *args, kCallHelp, session, &p)) return rc;
  if (args->Has("--verbose")) PrintMetadata(env, "> ", session.options.metadata);
  if (p.method->client_streaming() || p.method->server_streaming()) {
    return CallStream(env, *args, *format, session, p);
  }
  google::protobuf::Message* response = p.response.get();
  Metadata trailers, headers;
  absl::Status s = session.channel->Call(p.wire_name, *p.request, response,
                                         session.options, &trailers, &headers);
  if (args->Has("--verbose")) {
    PrintMetadata(env, "< ", headers);
    PrintMetadata(env, "< [trailer] ", trailers);
  }
  if (!s.ok()) return FailCall(env, s);
  auto out = FormatMessage(*response, *format, args->Has("--emit-defaults"));
  if (!out.ok()) return Fail(env, kExitBadInput, out.status().message());
  env.out << *out;
  if (*format == OutputFormat::kJson) env.out << "\n";
  return kExitOk;
}

absl::StatusOr<int64_t> ParseCount(const Args& args, const std::string& flag,
                                   int64_t fallback, int64_t min) {
  if (!args.Has(flag)) return fallback;
  int64_t v;
  if (!absl::SimpleAtoi(args.Get(flag), &v) || v < min) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad ", flag, " \"", args.Get(flag), "\" (a whole number >= ", min,
        ")"));
  }
  return v;
}

int Bench(const Env& env, const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {{"--data", "-d", true},
                               {"--concurrency", "-c", true},
                               {"--connections", nullptr, true},
                               {"--rps", nullptr, true},
                               {"--calls", "-n", true},
                               {"--duration", "-z", true},
                               {"--warmup", nullptr, true},
                               {"--threads", nullptr, true},
                               {"--metadata", nullptr, true},
                               {"--json", nullptr, false}});
  if (!args.ok()) return UsageError(env, args.status().message(), kBenchHelp);
  if (args->Has("--help")) return (env.out << kBenchHelp, kExitOk);
  if (args->positional.size() < 2 || args->positional.size() > 3) {
    return UsageError(env, "bench needs ADDR, METHOD and an optional JSON request",
                      kBenchHelp);
  }
  BenchOptions o;
  auto concurrency = ParseCount(*args, "--concurrency", 1, 1);
  auto connections = ParseCount(*args, "--connections", 1, 1);
  auto calls = ParseCount(*args, "--calls", 0, 1);
  auto threads = ParseCount(*args, "--threads", 1, 1);
  for (const auto* v : {&concurrency, &connections, &calls, &threads}) {
    if (!v->ok()) return UsageError(env, v->status().message(), kBenchHelp);
  }
  o.concurrency = static_cast<int>(*concurrency);
  o.connections = static_cast<int>(*connections);
  o.total_calls = *calls;
  o.threads = static_cast<int>(*threads);
  if (args->Has("--rps")) {
    if (!absl::SimpleAtod(args->Get("--rps"), &o.rps) || o.rps <= 0) {
      return UsageError(env, absl::StrCat("bad --rps \"", args->Get("--rps"), "\""),
                        kBenchHelp);
    }
  }
  o.duration = o.total_calls > 0 ? absl::Hours(1) : absl::Seconds(5);
  for (auto [flag, target] : {std::pair<const char*, absl::Duration*>{
                                  "--duration", &o.duration},
                              {"--warmup", &o.warmup}}) {
    if (!args->Has(flag)) continue;
    absl::Duration d;
    if (!absl::ParseDuration(args->Get(flag), &d) || d < absl::ZeroDuration()) {
      return UsageError(env, absl::StrCat("bad ", flag, " \"", args->Get(flag),
                                          "\" (a duration such as 10s)"),
                        kBenchHelp);
    }
    *target = d;
  }
  Session session;
  if (int rc = OpenSession(env, *args, kBenchHelp, true, &session)) return rc;
  int rc = 0;
  if (!ParseMetadataFlags(env, *args, kBenchHelp, &o.metadata, &rc)) return rc;
  Prepared p;
  if (int rc = Prepare(env, *args, kBenchHelp, session, &p)) return rc;
  if (p.method->client_streaming() || p.method->server_streaming()) {
    return UsageError(env,
                      absl::StrCat(p.wire_name,
                                   " is a streaming method; bench load-tests "
                                   "unary methods"),
                      kBenchHelp);
  }
  session.channel.reset();  // The bench opens its own connections.

  o.address = args->positional[0];
  if (args->Has("--lb")) o.load_balancer = args->Get("--lb");
  o.service_config = session.channel_options.service_config;
  o.tls = session.channel_options.tls;
  o.method = p.wire_name;
  o.request = p.request.get();
  o.response_prototype = p.response.get();
  o.timeout = session.options.timeout;
  bool live = !args->Has("--json") && isatty(fileno(stderr));
  if (live) {
    o.on_progress = [&env](const BenchProgress& progress) {
      env.err << absl::StrFormat(
          "\r%s %6.1fs  calls %-10d qps %-10.0f errors %-6d in flight %-5d",
          progress.warming_up ? "warm-up" : "running",
          absl::ToDoubleSeconds(progress.elapsed), progress.calls,
          progress.current_qps, progress.errors, progress.in_flight);
      env.err.flush();
    };
  }
  absl::StatusOr<BenchResult> result = RunBench(o);
  if (live) env.err << "\r" << std::string(78, ' ') << "\r";
  if (!result.ok()) return Fail(env, kExitUsage, result.status().message());
  if (args->Has("--json")) {
    env.out << FormatJsonLine(*result, "bevrpc", result->connections,
                              result->concurrency,
                              static_cast<int>(p.request->ByteSizeLong()),
                              result->threads, /*with_endpoints=*/true)
            << "\n";
  } else {
    env.out << FormatSummary(*result);
  }
  return result->errors == 0 ? kExitOk : kExitNotServing;
}

int Health(const Env& env, const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {});
  if (!args.ok()) return UsageError(env, args.status().message(), kHealthHelp);
  if (args->Has("--help")) return (env.out << kHealthHelp, kExitOk);
  if (args->positional.empty() || args->positional.size() > 2) {
    return UsageError(env, "health needs ADDR and an optional SERVICE",
                      kHealthHelp);
  }
  Session session;
  if (int rc = OpenSession(env, *args, kHealthHelp, false, &session)) return rc;
  health::v1::HealthCheckRequest req;
  if (args->positional.size() == 2) req.set_service(args->positional[1]);
  health::v1::HealthCheckResponse resp;
  CallOptions options;
  options.timeout = session.rpc_timeout;
  absl::Status s = session.channel->Call("bevrpc.health.v1.Health/Check", req,
                                         &resp, options);
  if (!s.ok()) {
    return FailStatus(env, s, absl::StrCat("health check of ", args->positional[0]));
  }
  env.out << health::v1::HealthCheckResponse::ServingStatus_Name(resp.status())
          << "\n";
  return resp.status() == health::v1::HealthCheckResponse::SERVING
             ? kExitOk
             : kExitNotServing;
}

// One line per endpoint: "HOST:PORT STATE [weight=N] [zone=Z] [id=I]
// [version=V] [ejections=N]".
std::string FormatEndpoints(const std::vector<ChannelEndpoint>& endpoints) {
  std::vector<ChannelEndpoint> sorted = endpoints;
  std::sort(sorted.begin(), sorted.end(),
            [](const ChannelEndpoint& a, const ChannelEndpoint& b) {
              return a.address < b.address;
            });
  std::string out;
  for (const ChannelEndpoint& e : sorted) {
    absl::StrAppend(&out, e.address, " ", e.state);
    if (e.weight != 1) absl::StrAppend(&out, " weight=", e.weight);
    if (!e.zone.empty()) absl::StrAppend(&out, " zone=", e.zone);
    if (!e.id.empty()) absl::StrAppend(&out, " id=", e.id);
    if (!e.version.empty()) absl::StrAppend(&out, " version=", e.version);
    if (e.ejections > 0) absl::StrAppend(&out, " ejections=", e.ejections);
    absl::StrAppend(&out, "\n");
  }
  return out;
}

int Resolve(const Env& env, const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {{"--watch", nullptr, false}});
  if (!args.ok()) return UsageError(env, args.status().message(), kResolveHelp);
  if (args->Has("--help")) return (env.out << kResolveHelp, kExitOk);
  if (args->positional.size() != 1) {
    return UsageError(env, "resolve needs a TARGET", kResolveHelp);
  }
  absl::Duration timeout = absl::Seconds(10);
  if (args->Has("--timeout")) {
    auto d = ParsePositiveDuration(args->Get("--timeout"), "--timeout");
    if (!d.ok()) return UsageError(env, d.status().message(), kResolveHelp);
    timeout = *d;
  }
  // pick_first would probe one endpoint only: every endpoint in turn.
  ChannelOptions options;
  options.tls = TlsFlags(*args);
  options.resolver.file_poll_interval = absl::Milliseconds(100);
  auto channel = Channel::Create(args->positional[0], options);
  if (!channel.ok()) return Fail(env, kExitUsage, channel.status().message());
  absl::Status resolved = (*channel)->WaitForEndpoints(timeout);
  if (!resolved.ok()) {
    return FailStatus(env, absl::UnavailableError(resolved.message()),
                      absl::StrCat("resolve ", args->positional[0]));
  }
  // A health check on each endpoint (round robin covers them all) makes
  // the states mean something; its answer does not matter here.
  auto probe = [&](size_t n) {
    std::vector<std::unique_ptr<Notification>> done;
    std::vector<health::v1::HealthCheckResponse> responses(n);
    health::v1::HealthCheckRequest req;
    CallOptions call;
    call.timeout = std::min(timeout, absl::Seconds(2));
    for (size_t i = 0; i < n; ++i) {
      done.push_back(std::make_unique<Notification>());
      Notification* d = done.back().get();
      (*channel)->CallAsync("bevrpc.health.v1.Health/Check", req,
                            &responses[i], call,
                            [d](absl::Status) { d->Notify(); });
    }
    for (auto& d : done) d->WaitForNotification();
  };
  std::vector<ChannelEndpoint> endpoints = (*channel)->endpoints();
  probe(endpoints.size());
  std::string last = FormatEndpoints((*channel)->endpoints());
  env.out << last;
  env.out.flush();
  if (!args->Has("--watch")) return kExitOk;
  for (;;) {  // Until interrupted.
    absl::SleepFor(absl::Milliseconds(100));  // Polls: states have no event.
    std::vector<ChannelEndpoint> now = (*channel)->endpoints();
    // New endpoints are probed so they show their real state.
    size_t fresh = 0;
    for (const ChannelEndpoint& e : now) fresh += e.state == "IDLE";
    if (fresh > 0) probe(now.size());
    std::string text = FormatEndpoints((*channel)->endpoints());
    if (text == last) continue;
    last = text;
    env.out << "\n" << text;
    env.out.flush();
  }
}

// "IP:PORT" / "[V6]:PORT" / "name:PORT" -> host, port.
absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(
    absl::string_view address) {
  size_t colon = address.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", address, "\" is not HOST:PORT"));
  }
  absl::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::make_pair(std::string(host), static_cast<uint16_t>(port));
}

// Reads `path` of each server with HTTP GET, on a loop of its own.
class MetricsReader {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsReader>> Create(
      const std::vector<std::string>& addresses, std::string path,
      absl::Duration timeout) {
    auto pool = transport::LoopPool::Start(1, "stats");
    if (!pool.ok()) return pool.status();
    auto reader = std::unique_ptr<MetricsReader>(
        new MetricsReader(std::move(*pool), std::move(path), timeout));
    absl::Status created;
    Notification done;
    reader->loop()->Post([&] {
      for (const std::string& address : addresses) {
        auto hp = SplitHostPort(address);
        if (!hp.ok()) {
          created = hp.status();
          break;
        }
        auto client =
            transport::HttpClient::Create(reader->loop(), hp->first, hp->second);
        if (!client.ok()) {
          created = client.status();
          break;
        }
        reader->clients_.push_back(std::move(*client));
      }
      done.Notify();
    });
    done.WaitForNotification();
    if (!created.ok()) {
      reader->Close();
      return created;
    }
    return reader;
  }
  ~MetricsReader() { Close(); }

  // Reads every server's page at once; one result per address.
  std::vector<absl::StatusOr<std::vector<PromSample>>> ReadAll() {
    std::vector<absl::StatusOr<std::vector<PromSample>>> results(
        clients_.size(), absl::UnknownError("no answer"));
    std::vector<Notification> done(clients_.size());
    loop()->Post([&] {
      for (size_t i = 0; i < clients_.size(); ++i) {
        clients_[i]->Get(
            path_, {}, timeout_,
            [&, i](absl::StatusOr<transport::HttpResponse> r) {
              if (!r.ok()) {
                results[i] = r.status();
              } else if (r->status != 200) {
                results[i] = transport::HttpStatusToStatus(r->status, r->body);
              } else {
                results[i] = ParsePrometheusText(r->body);
              }
              done[i].Notify();
            });
      }
    });
    for (Notification& d : done) d.WaitForNotification();
    return results;
  }

 private:
  MetricsReader(std::unique_ptr<transport::LoopPool> pool, std::string path,
                absl::Duration timeout)
      : pool_(std::move(pool)), path_(std::move(path)), timeout_(timeout) {}
  transport::EventLoop* loop() { return pool_->loop(0); }
  void Close() {
    if (pool_ == nullptr) return;
    Notification done;
    loop()->Post([&] {
      clients_.clear();
      done.Notify();
    });
    done.WaitForNotification();
    pool_->Stop();
    pool_.reset();
  }

  std::unique_ptr<transport::LoopPool> pool_;
  const std::string path_;
  const absl::Duration timeout_;
  std::vector<std::unique_ptr<transport::HttpClient>> clients_;  // loop only
};

int Stats(const Env& env, const std::vector<std::string>& argv) {
  auto args = ParseArgs(argv, {{"--watch", nullptr, false},
                               {"--interval", nullptr, true},
                               {"--count", nullptr, true},
                               {"--client", nullptr, false},
                               {"--path", nullptr, true}});
  if (!args.ok()) return UsageError(env, args.status().message(), kStatsHelp);
  if (args->Has("--help")) return (env.out << kStatsHelp, kExitOk);
  if (args->positional.size() != 1) {
    return UsageError(env, "stats needs a TARGET", kStatsHelp);
  }
  const std::string& target = args->positional[0];
  absl::Duration timeout = absl::Seconds(10);
  absl::Duration interval = absl::Seconds(1);
  if (args->Has("--timeout")) {
    auto d = ParsePositiveDuration(args->Get("--timeout"), "--timeout");
    if (!d.ok()) return UsageError(env, d.status().message(), kStatsHelp);
    timeout = *d;
  }
  if (args->Has("--interval")) {
    auto d = ParsePositiveDuration(args->Get("--interval"), "--interval");
    if (!d.ok()) return UsageError(env, d.status().message(), kStatsHelp);
    interval = *d;
  }
  int64_t count = args->Has("--watch") ? -1 : 1;
  if (args->Has("--count")) {
    if (!args->Has("--watch")) {
      return UsageError(env, "--count goes with --watch", kStatsHelp);
    }
    auto n = ParseCount(*args, "--count", 1, 1);
    if (!n.ok()) return UsageError(env, n.status().message(), kStatsHelp);
    count = *n;
  }
  std::string path = args->Get("--path", "/metrics");
  if (!absl::StartsWith(path, "/")) {
    return UsageError(env, "--path must start with /", kStatsHelp);
  }
  const char* side = args->Has("--client") ? "client" : "server";

  // The servers: the target itself, or every endpoint it names.
  std::vector<std::string> addresses;
  if (!absl::StrContains(target, "://")) {
    addresses.push_back(target);
  } else {
    auto channel = Channel::Create(target);
    if (!channel.ok()) return Fail(env, kExitUsage, channel.status().message());
    absl::Status resolved = (*channel)->WaitForEndpoints(timeout);
    if (!resolved.ok()) {
      return FailStatus(env, absl::UnavailableError(resolved.message()),
                        absl::StrCat("resolve ", target));
    }
    for (const ChannelEndpoint& e : (*channel)->endpoints()) {
      addresses.push_back(e.address);
    }
    std::sort(addresses.begin(), addresses.end());
  }
  auto reader = MetricsReader::Create(addresses, path, timeout);
  if (!reader.ok()) return Fail(env, kExitUsage, reader.status().message());

  auto before = (*reader)->ReadAll();
  absl::Time then = absl::Now();
  int rc = kExitOk;
  for (int64_t shown = 0; count < 0 || shown < count; ++shown) {
    absl::SleepFor(interval);
    auto after = (*reader)->ReadAll();
    absl::Time now = absl::Now();
    rc = kExitOk;
    if (shown > 0) env.out << "\n";
    for (size_t i = 0; i < addresses.size(); ++i) {
      if (addresses.size() > 1 || count != 1) {
        env.out << "== " << addresses[i] << "  "
                << absl::FormatTime("%H:%M:%S", now, absl::LocalTimeZone())
                << " ==\n";
      }
      if (!after[i].ok() || !before[i].ok()) {
        const absl::Status& s =
            after[i].ok() ? before[i].status() : after[i].status();
        env.out << "error: " << StatusCodeName(s.code()) << ": " << s.message()
                << "\n";
        if (rc == kExitOk) rc = kExitRpcBase + static_cast<int>(s.code());
        continue;
      }
      std::vector<MethodStats> stats =
          ComputeStats(*before[i], *after[i], now - then, side);
      if (stats.empty()) {
        env.out << "no calls recorded (bevrpc_" << side << "_* metrics)\n";
      } else {
        env.out << FormatStatsTable(stats);
      }
    }
    env.out.flush();
    before = std::move(after);
    then = now;
  }
  if (rc != kExitOk) env.err << "bevrpc: stats: not every endpoint answered\n";
  return rc;
}

int Completion(const Env& env, const std::vector<std::string>& argv) {
  if (argv.size() == 1 && (argv[0] == "--help" || argv[0] == "-h")) {
    env.out << kCompletionHelp;
    return kExitOk;
  }
  if (argv.size() != 1 || argv[0] != "bash") {
    return UsageError(env, "completion needs a shell name: bash",
                      kCompletionHelp);
  }
  env.out << kCompletion;
  return kExitOk;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::istream& in,
           std::ostream& out, std::ostream& err) {
  Env env{in, out, err};
  if (args.empty()) return (err << kMainHelp, kExitUsage);
  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--help" || command == "-h" || command == "help") {
    out << kMainHelp;
    return kExitOk;
  }
  if (command == "list") return List(env, rest);
  if (command == "describe") return Describe(env, rest);
  if (command == "call") return Call(env, rest);
  if (command == "health") return Health(env, rest);
  if (command == "bench") return Bench(env, rest);
  if (command == "resolve") return Resolve(env, rest);
  if (command == "stats") return Stats(env, rest);
  if (command == "completion") return Completion(env, rest);
  return UsageError(env, absl::StrCat("unknown command \"", command, "\""),
                    kMainHelp);
}

}  // namespace bevrpc::cli
