#include "services/builtin/server_main.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "rpc/auth/bearer_token.h"
#include "rpc/auth/cert_authorizer.h"
#include "rpc/internal/file_stamp.h"
#include "rpc/internal/read_file.h"
#include "rpc/tenant/tenant_limits.h"
#include "rpc/naming/target.h"
#include "rpc/status.h"
#include "services/builtin/prefork.h"
#include "services/builtin/reflection_service.h"
#include "services/builtin/server_info_service.h"
#include "transport/address.h"
#include "transport/sync.h"

ABSL_FLAG(int, port, 0, "TCP port to listen on; 0 picks a free port");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, threads, 1, "I/O threads (event loops)");
ABSL_FLAG(int, worker_threads, 4,
          "threads for sync unary handlers (ServerOptions::worker_threads)");
ABSL_FLAG(int, max_stream_threads, 256,
          "most sync streaming handlers running at once, each on its own "
          "thread (ServerOptions::max_stream_threads)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve TLS (with --tls_key); plaintext "
          "clients are refused. Reloaded on SIGHUP and when the file changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: require a client certificate signed by "
          "them (mutual TLS)");
ABSL_FLAG(int, grace_ms, 5000,
          "on SIGTERM/SIGINT, how long open calls may take to finish");
ABSL_FLAG(bool, reflection, true,
          "serve bevrpc.reflection.v1.ServerReflection (the CLI uses it)");
ABSL_FLAG(std::string, register, "",
          "register this server in etcd while it runs: "
          "etcd://HOST:PORT[,HOST:PORT...]/PREFIX (key PREFIX/ADVERTISE, "
          "kept alive with a lease; revoked on SIGTERM/SIGINT before "
          "draining). Empty: no registration");
ABSL_FLAG(absl::Duration, register_ttl, absl::Seconds(10),
          "lease TTL of the --register key: how long it outlives a crash");
ABSL_FLAG(std::string, id, "",
          "stable replica identity, e.g. kv/0: registered (--register) as "
          "the etcd value's \"id\", so ring_hash keeps this replica's place "
          "(its keys) across restarts and address changes; reported by "
          "bevrpc.server.v1.ServerInfo/Get. Default: none");
ABSL_FLAG(std::string, workers, "1",
          "prefork: N > 1 runs a master process that listens on nothing "
          "itself and supervises N worker processes serving the same port "
          "(SO_REUSEPORT); it restarts a worker that dies, drains them all "
          "on SIGTERM/SIGINT and restarts them one at a time on SIGHUP. 1: "
          "one process, no master");
ABSL_FLAG(bool, server_info, true,
          "serve bevrpc.server.v1.ServerInfo (which process answered: pid, "
          "prefork worker, --id)");
ABSL_FLAG(std::string, advertise, "",
          "HOST:PORT to register (--register); default: the listening "
          "address");

ABSL_FLAG(std::string, max_concurrent_calls, "0",
          "most calls (unary and streaming) in flight at once across the "
          "server; more are refused at once with RESOURCE_EXHAUSTED and the "
          "trailer bevrpc-retry-pushback-ms: 0 (ServerOptions::"
          "max_concurrent_calls). 0 = unlimited. auto: a limit on unary "
          "calls that adapts to measured throughput and latency "
          "(ServerOptions::adaptive_concurrency, with its defaults)");
ABSL_FLAG(std::vector<std::string>, fault_abort, {},
          "fault injection, for testing clients: abort a share of calls "
          "before their handler runs. Comma-separated rules "
          "METHOD_OR_*:PERCENT:CODE, e.g. "
          "bevrpc.echo.Echo/Echo:10:UNAVAILABLE or *:0.5:14 (CODE: a "
          "canonical name or its number; PERCENT: 0 to 100). Off by "
          "default; logged at start");
ABSL_FLAG(std::vector<std::string>, fault_delay, {},
          "fault injection: delay a share of calls before their handler "
          "runs (no thread waits). Comma-separated rules "
          "METHOD_OR_*:PERCENT:DURATION, e.g. *:50:100ms (DURATION: 250ms, "
          "1.5s, ...). Off by default; logged at start");
ABSL_FLAG(std::string, metrics, "on",
          "record the server's metrics (per-method calls, latency, bytes; "
          "docs/observability.md): on or off. Off, /metrics shows only "
          "process metrics and /status has no data");
ABSL_FLAG(std::string, http, "on",
          "built-in HTTP pages (/metrics, /health, /options, /connections): "
          "on serves them on the RPC port (a connection starting with an "
          "HTTP method is HTTP); off serves them nowhere (HTTP gets the "
          "bad-magic answer). --admin_address serves them there instead");
ABSL_FLAG(std::string, admin_address, "",
          "HOST:PORT to serve the HTTP pages on instead of the RPC port "
          "(port 0 picks a free one, printed as \"admin pages on "
          "HOST:PORT\"); the RPC port then treats HTTP as bad input. Needs "
          "--http=on; not with --workers");
ABSL_FLAG(std::string, auth_token_file, "",
          "require \"authorization: Bearer TOKEN\" on every call but "
          "health, reflection and server info; the file lists \"NAME "
          "TOKEN\" per line and is re-read when it changes "
          "(docs/security.md)");
ABSL_FLAG(std::string, authz_file, "",
          "client-certificate allow-list: \"METHOD_PATTERN IDENTITY...\" "
          "per line (cn:, dns:, ip:, uri:, subject:, *); needs mutual TLS "
          "(docs/security.md)");
ABSL_FLAG(std::string, tenant_limits, "",
          "per-tenant limits file: \"TENANT [rps=R] [burst=B] "
          "[concurrency=C] [read_bytes_per_sec=N] [write_bytes_per_sec=N]\" "
          "per line, \"*\" for every other tenant; the tenant is the "
          "caller's token name or certificate subject (docs/security.md)");
ABSL_FLAG(std::string, tenant_header, "",
          "with --tenant_limits: take the tenant from this request header "
          "instead of the authenticated identity");

namespace bevrpc::builtin {
namespace {

constexpr absl::string_view kFaultAbortForm = "METHOD_OR_*:PERCENT:CODE";
constexpr absl::string_view kFaultDelayForm = "METHOD_OR_*:PERCENT:DURATION";

// Splits "METHOD:PERCENT:VALUE" (method names contain no ':').
absl::Status SplitFaultRule(absl::string_view flag, absl::string_view form,
                            const std::string& rule, std::string* method,
                            double* percent, std::string* value) {
  std::vector<std::string> parts = absl::StrSplit(rule, ':');
  absl::string_view why;
  if (parts.size() != 3 || parts[0].empty()) {
    why = "expected three fields";
  } else if (!absl::SimpleAtod(parts[1], percent) || !(*percent >= 0) ||
             *percent > 100) {
    why = "PERCENT must be a number from 0 to 100";
  }
  if (!why.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", rule, ": ", why, "; expected ", form,
        " (comma-separated)"));
  }
  *method = parts[0];
  *value = parts[2];
  return absl::OkStatus();
}

// --fault_abort, --fault_delay and --max_concurrent_calls into `options`.
absl::Status OverloadFlags(ServerOptions* options) {
  const std::string limit_flag = absl::GetFlag(FLAGS_max_concurrent_calls);
  int limit = 0;
  if (limit_flag == "auto") {
    options->adaptive_concurrency.enabled = true;
  } else if (!absl::SimpleAtoi(limit_flag, &limit)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_concurrent_calls=", limit_flag,
                     ": expected a number of calls (0 = unlimited) or auto"));
  } else if (limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_concurrent_calls=", limit_flag,
                     ": must be >= 0 (0 = unlimited) or auto"));
  } else {
    options->max_concurrent_calls = limit;
  }
  for (const std::string& rule : absl::GetFlag(FLAGS_fault_abort)) {
    FaultAbort abort;
    std::string code;
    absl::Status s = SplitFaultRule("fault_abort", kFaultAbortForm, rule,
                                    &abort.method, &abort.percent, &code);
    if (!s.ok()) return s;
    if (!ParseStatusCode(code, &abort.code) ||
        abort.code == absl::StatusCode::kOk) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--fault_abort=", rule, ": CODE \"", code,
          "\" is not an error code (e.g. UNAVAILABLE or 14); expected ",
          kFaultAbortForm, " (comma-separated)"));
    }
    options->fault_injection.aborts.push_back(std::move(abort));
  }
  for (const std::string& rule : absl::GetFlag(FLAGS_fault_delay)) {
    FaultDelay delay;
    std::string duration;
    absl::Status s = SplitFaultRule("fault_delay", kFaultDelayForm, rule,
                                    &delay.method, &delay.percent, &duration);
    if (!s.ok()) return s;
    if (!absl::ParseDuration(duration, &delay.delay) ||
        delay.delay < absl::ZeroDuration() ||
        delay.delay == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--fault_delay=", rule, ": DURATION \"", duration,
          "\" is not a duration >= 0 (e.g. 250ms, 1.5s); expected ",
          kFaultDelayForm, " (comma-separated)"));
    }
    options->fault_injection.delays.push_back(std::move(delay));
  }
  return absl::OkStatus();
}

// Many idle connections need many descriptors: use all we may.
void RaiseOpenFilesLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

constexpr absl::string_view kRegisterForms =
    "etcd://HOST:PORT[,HOST:PORT...]/PREFIX";

// Checks --register, --advertise and --register_ttl before anything starts.
absl::Status CheckRegistrationFlags() {
  std::string target = absl::GetFlag(FLAGS_register);
  if (target.empty()) return absl::OkStatus();
  absl::StatusOr<naming::Target> t = naming::ParseTarget(target);
  if (!t.ok() || t->scheme != naming::Target::Scheme::kEtcd) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--register=", target, ": ",
        t.ok() ? "not an etcd target" : t.status().message(),
        "; --register accepts only ", kRegisterForms));
  }
  std::string advertise = absl::GetFlag(FLAGS_advertise);
  if (!advertise.empty()) {
    if (absl::StatusOr<naming::HostPort> hp = naming::ParseHostPort(advertise);
        !hp.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--advertise=", advertise, ": ", hp.status().message(),
                       "; expected HOST:PORT or [V6]:PORT"));
    }
  }
  if (absl::GetFlag(FLAGS_register_ttl) < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--register_ttl=",
        absl::FormatDuration(absl::GetFlag(FLAGS_register_ttl)),
        ": must be at least 1s"));
  }
  return absl::OkStatus();
}

// Everything a server process needs, built from the flags before any fork.
struct MainConfig {
  std::string name;
  std::string host;
  ServerOptions options;
  bool reflection = true;
  bool server_info = true;
  std::string id;
};

// --workers and the flags it changes: PreforkOptions, or 1 (no master).
absl::StatusOr<int> WorkersFlag() {
  absl::StatusOr<int> workers = ParseWorkers(absl::GetFlag(FLAGS_workers));
  if (!workers.ok()) return workers.status();
  if (*workers > 1) {
    if (absl::StatusOr<ReservedPort> probe =
            ReservePort(absl::GetFlag(FLAGS_host), 0);
        !probe.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--workers=", *workers, " with --host=", absl::GetFlag(FLAGS_host),
          ": ", probe.status().message()));
    } else {
      close(probe->fd);
    }
  }
  return workers;
}

// --http and --admin_address.
absl::Status HttpFlags(ServerOptions* options) {
  const std::string http = absl::GetFlag(FLAGS_http);
  const std::string admin = absl::GetFlag(FLAGS_admin_address);
  if (http != "on" && http != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--http=", http, ": expected on or off"));
  }
  if (admin.empty()) {
    options->http = http == "on" ? HttpMode::kSamePort : HttpMode::kOff;
    return absl::OkStatus();
  }
  if (http == "off") {
    return absl::InvalidArgumentError(
        "--admin_address with --http=off: the pages are off");
  }
  if (absl::GetFlag(FLAGS_workers) != "1") {
    return absl::InvalidArgumentError(
        "--admin_address with --workers: each worker would need its own "
        "admin address; use --http=on (pages on the shared port)");
  }
  absl::StatusOr<transport::SocketAddress> parsed =
      transport::SocketAddress::Parse(admin);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--admin_address=", admin, ": ", parsed.status().message(),
        "; expected HOST:PORT"));
  }
  options->http = HttpMode::kSeparateAddress;
  options->admin_address = admin;
  return absl::OkStatus();
}

// Parses and checks every flag into `config`; an error names the flag.
absl::Status InterceptorFlags(ServerOptions* options);

absl::Status ParseFlags(absl::string_view name, MainConfig* config) {
  if (absl::Status s = CheckRegistrationFlags(); !s.ok()) return s;
  config->name = std::string(name);
  config->host = absl::GetFlag(FLAGS_host);
  ServerOptions& options = config->options;
  options.listen_address =
      JoinHostPort(config->host, absl::GetFlag(FLAGS_port));
  options.io_threads = absl::GetFlag(FLAGS_threads);
  options.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  options.max_stream_threads = absl::GetFlag(FLAGS_max_stream_threads);
  // Registered once listening; revoked by Shutdown() before the drain.
  options.register_target = absl::GetFlag(FLAGS_register);
  options.advertise = absl::GetFlag(FLAGS_advertise);
  options.registration.ttl = absl::GetFlag(FLAGS_register_ttl);
  config->id = absl::GetFlag(FLAGS_id);
  options.registration.id = config->id;
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  if (options.tls.cert_file.empty() != options.tls.key_file.empty() ||
      (!options.tls.client_ca_file.empty() && options.tls.cert_file.empty())) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together; --tls_client_ca needs both");
  }
  config->reflection = absl::GetFlag(FLAGS_reflection);
  config->server_info = absl::GetFlag(FLAGS_server_info);
  if (absl::Status s = HttpFlags(&options); !s.ok()) return s;
  if (const std::string m = absl::GetFlag(FLAGS_metrics); m != "on" && m != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics=", m, ": expected on or off"));
  } else {
    options.enable_metrics = m == "on";
  }
  if (absl::Status s = InterceptorFlags(&options); !s.ok()) return s;
  return OverloadFlags(&options);
}

// --auth_token_file, --authz_file, --tenant_limits: the interceptor chain,
// in that order (who the caller is, whether it may call, its limits).
absl::Status InterceptorFlags(ServerOptions* options) {
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file);
      !path.empty()) {
    auto auth = auth::BearerTokenAuth::FromFile(path, {});
    if (!auth.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--auth_token_file: ", auth.status().message()));
    }
    options->interceptors.push_back(*std::move(auth));
  }
  if (const std::string path = absl::GetFlag(FLAGS_authz_file);
      !path.empty()) {
    auto rules = auth::CertAuthorizer::ParseFile(path);
    if (!rules.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--authz_file: ", rules.status().message()));
    }
    options->interceptors.push_back(
        std::make_shared<auth::CertAuthorizer>(*std::move(rules)));
  }
  const std::string limits = absl::GetFlag(FLAGS_tenant_limits);
  if (limits.empty()) {
    if (!absl::GetFlag(FLAGS_tenant_header).empty()) {
      return absl::InvalidArgumentError(
          "--tenant_header needs --tenant_limits");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> contents = internal::ReadFileToString(limits);
  if (!contents.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tenant_limits: cannot read ", limits));
  }
  tenant::TenantLimitsOptions tenants;
  tenants.key_header = absl::GetFlag(FLAGS_tenant_header);
  if (absl::Status s = tenant::TenantLimiter::ParseInto(*contents, &tenants);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tenant_limits: ", limits, ": ", s.message()));
  }
  auto limiter = tenant::TenantLimiter::Create(std::move(tenants));
  if (!limiter.ok()) return limiter.status();
  options->interceptors.push_back(*std::move(limiter));
  return absl::OkStatus();
}

// Adds the builtin services (the binary's are in) and starts `server`.
absl::Status StartServer(const MainConfig& config, Server& server,
                         HealthService& health, ServerInfoService& info) {
  absl::Status s;
  if (config.reflection) s = AddReflection(server);
  if (s.ok() && config.server_info) s = server.RegisterService(&info);
  if (s.ok()) s = health.Register();
  if (s.ok()) s = server.Start();
  return s;
}

// TLS reload (--tls_cert): re-reads the files; logs the outcome.
void ReloadTls(const MainConfig& config, Server& server, absl::string_view why) {
  absl::Status s = server.ReloadTls();
  std::cerr << absl::StrCat(config.name, ": ", why, ": ",
                            s.ok() ? "reloaded TLS certificate"
                                   : absl::StrCat("TLS reload failed, keeping "
                                                  "the old certificate: ",
                                                  s.message()),
                            "\n");
}

// Polls the TLS files every 2 s and reloads when one changed (certificates
// renewed in place or replaced). A file that is missing or cannot be
// stat()ed counts as a state of its own, so its going and coming back are
// changes too.
class TlsFileWatcher {
 public:
  TlsFileWatcher(const MainConfig& config, Server* server)
      : config_(config), server_(server), last_(Stamps()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~TlsFileWatcher() {
    stop_.Notify();
    thread_.join();
  }

 private:
  // Certificate, key, client CA; nullopt for one not given or missing.
  using FileStamps = std::vector<std::optional<internal::FileStamp>>;

  FileStamps Stamps() const {
    FileStamps out;
    const transport::TlsServerOptions& t = config_.options.tls;
    for (const std::string* f : {&t.cert_file, &t.key_file, &t.client_ca_file}) {
      std::optional<internal::FileStamp> stamp;
      if (!f->empty()) {
        absl::StatusOr<internal::FileStamp> now = internal::FileStamp::Of(*f);
        if (now.ok()) stamp = *now;
      }
      out.push_back(stamp);
    }
    return out;
  }
  void Run() {
    while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(2))) {
      FileStamps now = Stamps();
      if (now == last_) continue;
      last_ = std::move(now);
      ReloadTls(config_, *server_, "TLS files changed");
    }
  }

  const MainConfig& config_;
  Server* server_;
  FileStamps last_;
  Notification stop_;  // transport/sync.h: visible to TSan.
  std::thread thread_;
};

// One server process: the whole program without --workers, or one prefork
// worker (`worker` not null). Serves until SIGTERM/SIGINT, then drains.
int Serve(MainConfig config, RegisterFn register_services,
          const WorkerContext* worker) {
  // Block the stop signals in every thread; this one waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // TLS: SIGHUP reloads the certificate (a prefork master turns SIGHUP into
  // a rolling restart instead, which loads the files afresh).
  const bool tls = config.options.tls.enabled();
  if (tls && worker == nullptr) sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ServerOptions& options = config.options;
  ServerInfoFacts facts;
  facts.name = config.name;
  facts.id = config.id;
  if (worker != nullptr) {
    facts.worker = worker->index;
    facts.master_pid = worker->master_pid;
    options.reuse_port = true;
    options.listen_address = JoinHostPort(config.host, worker->port);
    // One registration for the port, not one per worker: a worker that
    // stops would revoke the key the others share (see server_main.h).
    if (worker->index != 0) options.register_target.clear();
  }
  Server server(options);
  HealthService health(&server);
  ServerInfoService info(facts);
  absl::Status s = register_services(server, health);
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    // The binary's own flags (checked in its callback): a usage error.
    std::cerr << config.name << ": " << s.message() << "\n";
    return 2;
  }
  // Known before the first call can arrive when the port is fixed (every
  // prefork worker's is): a worker accepts on the shared port at Start().
  if (worker != nullptr || absl::GetFlag(FLAGS_port) != 0) {
    info.SetListenAddress(options.listen_address);
  }
  if (s.ok()) s = StartServer(config, server, health, info);
  if (!s.ok() && s.code() == absl::StatusCode::kInvalidArgument &&
      options.fault_injection.enabled()) {
    // A rule naming a method this binary does not serve.
    std::cerr << config.name << ": --fault_abort / --fault_delay: "
              << s.message() << "; expected " << kFaultAbortForm << " / "
              << kFaultDelayForm << " (comma-separated)\n";
    return 2;
  }
  if (!s.ok()) {
    std::cerr << config.name << ": " << s << "\n";
    return 1;
  }
  if (options.adaptive_concurrency.enabled && worker == nullptr) {
    std::cerr << config.name
              << ": --max_concurrent_calls=auto: adaptive limit on unary "
                 "calls, starting at "
              << server.concurrency_limit() << "\n";
  }
  std::string listening = JoinHostPort(config.host, server.port());
  info.SetListenAddress(listening);
  if (worker != nullptr) {
    ReportReady(*worker);  // The master prints the line once all are.
  } else {
    if (server.admin_port() != 0) {
      // Before the "listening on" line, which tells a launcher it is ready.
      std::cout << "admin pages on " << server.admin_address() << "\n";
    }
    std::cout << "listening on " << listening << std::endl;
  }

  std::unique_ptr<TlsFileWatcher> watcher;
  if (tls) watcher = std::make_unique<TlsFileWatcher>(config, &server);
  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
    ReloadTls(config, server, "SIGHUP");
  }
  watcher.reset();
  // One write: workers share the terminal.
  std::cerr << absl::StrCat(
      config.name,
      worker != nullptr ? absl::StrCat(" worker ", worker->index) : "",
      ": got ", sig == SIGTERM ? "SIGTERM" : "SIGINT", ", draining\n");
  // Deregisters first (--register), so clients stop picking this server
  // before it drains.
  server.Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_grace_ms)));
  return 0;
}

}  // namespace

int ServerMain(int argc, char** argv, absl::string_view name,
               RegisterFn register_services) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "Usage: ", name,
      " [--port=P] [--host=ADDR] [--threads=N] [--grace_ms=MS]"
      " [--workers=N] [--id=ID] [--reflection=false] [--server_info=false]"
      " [--register=etcd://H:P/PREFIX"
      " [--register_ttl=10s] [--advertise=HOST:PORT]]"
      " [--max_concurrent_calls=N|auto] [--fault_abort=METHOD_OR_*:PERCENT:CODE]"
      " [--fault_delay=METHOD_OR_*:PERCENT:DURATION]\n"
      "(--helpfull describes every flag)"));
  absl::ParseCommandLine(argc, argv);
  MainConfig config;
  absl::StatusOr<int> workers = WorkersFlag();
  absl::Status s = workers.ok() ? ParseFlags(name, &config) : workers.status();
  if (!s.ok()) {
    std::cerr << name << ": " << s.message() << "\n";
    return 2;
  }
  RaiseOpenFilesLimit();
  if (*workers == 1) return Serve(std::move(config), register_services, nullptr);

  // Prefork: this process stays single-threaded and only supervises.
  absl::StatusOr<ReservedPort> port =
      ReservePort(config.host, absl::GetFlag(FLAGS_port));
  if (!port.ok()) {
    std::cerr << name << ": --port=" << absl::GetFlag(FLAGS_port) << ": "
              << port.status().message() << "\n";
    return 1;
  }
  PreforkOptions prefork;
  prefork.workers = *workers;
  prefork.name = std::string(name);
  prefork.listen_host = config.host;
  prefork.stop_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_grace_ms)) + absl::Seconds(5);
  return RunPrefork(prefork, *port, [&](const WorkerContext& worker) {
    return Serve(config, register_services, &worker);
  });
}

}  // namespace bevrpc::builtin
