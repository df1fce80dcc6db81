#include "rpc/server.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "transport/sync.h"
#include "rpc/internal/admin_pages.h"
#include "rpc/metrics/process_metrics.h"
#include "rpc/internal/server_session.h"
#include "rpc/status/chart_js.h"
#include "rpc/status/status_page.h"
#include "rpc/trace/rpcz_page.h"
#include "transport/listener.h"
#include "transport/loop_pool.h"
#include "transport/rate_limit.h"
#include "transport/tls.h"
#include "absl/time/clock.h"

namespace bevrpc {
namespace internal {

class ServerImpl : public ServerLevels {
 public:
  explicit ServerImpl(ServerOptions options) {
    shared_.options = std::move(options);
    shared_.rpcz = std::make_unique<trace::RpczStore>(shared_.options.rpcz);
    // Fixed paths into an empty registry: cannot fail.
    AddBuiltinPages(&shared_, [this] { return draining(); }).IgnoreError();
    AddStatusPage();
    shared_.pages
        .Add("/rpcz", "Recent calls with their trace ids and downstream calls",
             [rpcz = shared_.rpcz.get()](const admin::HttpRequest& r) {
               return trace::RenderRpcz(*rpcz, r);
             })
        .IgnoreError();
  }
  // /status and the Chart.js it loads. The page's own thread samples the
  // registry once a second from Start() to Shutdown() (only when pages are
  // served); its handler runs on I/O threads and only formats.
  void AddStatusPage() {
    status::StatusPageOptions o;
    o.registry = shared_.options.metrics_registry;
    status_page_ = std::make_unique<status::StatusPage>(o);
    shared_.pages
        .Add(status::kStatusPath, "Status: QPS, errors, latency per method",
             [page = status_page_.get()](const admin::HttpRequest& r) {
               return page->Handle(r);
             })
        .IgnoreError();
    shared_.pages
        .Add(status::kChartJsPath, "Chart.js (for /status)",
             &status::ServeChartJs)
        .IgnoreError();
  }
  ~ServerImpl() override {
    Shutdown(absl::ZeroDuration());
    // Not read any more once this returns (Start() may have failed).
    if (shared_.metrics != nullptr) shared_.metrics->RemoveLevels();
  }

  absl::Status RegisterMethod(MethodDesc method);
  absl::Status AddHttpPage(std::string path, std::string title,
                           admin::HttpPageHandler handler) {
    if (started_) {
      return absl::FailedPreconditionError(
          "AddHttpPage() must be called before Start()");
    }
    return shared_.pages.Add(std::move(path), std::move(title),
                             std::move(handler));
  }
  int admin_port() const {
    return admin_port_.load(std::memory_order_acquire);
  }
  std::string admin_address() const {
    const int port = admin_port();
    if (port == 0) return "";
    absl::string_view text = shared_.options.admin_address;
    return absl::StrCat(text.substr(0, text.rfind(':')), ":", port);
  }
  // Registers all or none.
  absl::Status RegisterMethods(std::vector<MethodDesc> methods);
  absl::Status Start();
  void Shutdown(absl::Duration grace);
  // Blocks until no call is held by a handler (see the definition).
  void WaitForHeldCalls();
  int port() const { return port_.load(std::memory_order_acquire); }
  size_t num_connections() const {
    return connections_.load(std::memory_order_relaxed);
  }
  std::vector<std::string> ServiceNames() const {
    std::vector<std::string> names(shared_.services.begin(),
                                   shared_.services.end());
    std::sort(names.begin(), names.end());
    return names;
  }
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  size_t calls_in_flight() const {
    return shared_.admission == nullptr
               ? 0
               : static_cast<size_t>(shared_.admission->calls_in_flight());
  }
  size_t concurrency_limit() const {
    return shared_.admission == nullptr
               ? 0
               : static_cast<size_t>(shared_.admission->concurrency_limit());
  }
  size_t memory_in_use() const {
    return shared_.memory == nullptr ? 0 : shared_.memory->used();
  }
  size_t peak_memory_in_use() const {
    return shared_.memory == nullptr ? 0 : shared_.memory->peak();
  }
  const trace::RpczStore& rpcz() const { return *shared_.rpcz; }

  // ServerLevels (metrics; read while registered, from Start() until the
  // end of Shutdown()).
  uint64_t connections() const override { return num_connections(); }
  uint64_t calls_queued() const override {
    return shared_.workers->queued() + shared_.stream_workers->queued();
  }
  uint64_t memory_bytes() const override { return memory_in_use(); }
  uint64_t memory_limit_bytes() const override {
    return shared_.options.max_server_memory_bytes;
  }
  uint64_t workers_busy() const override {
    return Busy(*shared_.workers) + Busy(*shared_.stream_workers);
  }
  uint64_t workers_idle() const override {
    return shared_.workers->idle_threads() +
           shared_.stream_workers->idle_threads();
  }
  uint64_t rate_limited_read_bytes() const override {
    uint64_t read = 0, written = 0;
    if (group_ != nullptr) group_->Totals(&read, &written);
    return read;
  }
  uint64_t rate_limited_written_bytes() const override {
    uint64_t read = 0, written = 0;
    if (group_ != nullptr) group_->Totals(&read, &written);
    return written;
  }

 private:
  // Sessions of one loop, touched only on that loop's thread.
  struct LoopSessions {
    transport::EventLoop* loop;
    absl::flat_hash_map<ServerSession*, std::unique_ptr<ServerSession>> sessions;
  };

  static uint64_t Busy(const WorkerPool& pool) {
    const int busy = pool.num_threads() - pool.idle_threads();
    return busy > 0 ? static_cast<uint64_t>(busy) : 0;
  }
  absl::Status CheckMethod(const MethodDesc& method) const;
  void OnAccept(int fd, SessionProtocol protocol);
  void AdoptOnLoop(LoopSessions* ls, int fd, SessionProtocol protocol);
  // With ServerOptions::tls: after the first byte is peeked, TLS or a
  // plaintext session that is refused.
  void AdoptSniffed(LoopSessions* ls, int fd, SessionProtocol protocol,
                    bool tls);
  void AddSession(LoopSessions* ls, std::unique_ptr<transport::Connection> conn,
                  SessionProtocol protocol, bool refuse_plaintext);
 public:
  absl::Status ReloadTls() {
    if (tls_ == nullptr) {
      return absl::FailedPreconditionError("the server is not using TLS");
    }
    return tls_->Reload();
  }
 private:
  // With HttpMode::kSeparateAddress: listens on admin_address (loop 0).
  absl::Status StartAdminListener();
  // Connections that are not HTTP (the drain waits for these only).
  size_t rpc_connections() const {
    const int64_t http =
        shared_.http_connections.load(std::memory_order_relaxed);
    const size_t all = connections_.load(std::memory_order_relaxed);
    return http > 0 && static_cast<size_t>(http) <= all
               ? all - static_cast<size_t>(http)
               : all;
  }
  // Runs fn(session) for every session on every loop; waits until done.
  void ForEachSession(absl::FunctionRef<void(ServerSession*)> fn);
  // Waits until no connection (`rpc_only`: no connection that is not
  // HTTP) is open or `deadline` passes.
  bool WaitForConnections(absl::Time deadline, bool rpc_only = false);

  // Before shared_: outlives the page handler that points at it.
  std::unique_ptr<status::StatusPage> status_page_;
  ServerShared shared_;
  std::unique_ptr<transport::LoopPool> owned_loops_;
  transport::LoopPool* loops_ = nullptr;
  std::vector<std::unique_ptr<LoopSessions>> loop_sessions_;
  std::unique_ptr<transport::Listener> listener_;
  std::unique_ptr<transport::Listener> admin_listener_;  // kSeparateAddress.
  std::atomic<int> admin_port_{0};
  // ServerOptions::tls; set in Start(), shared by every loop.
  std::shared_ptr<transport::TlsContext> tls_;
  std::unique_ptr<transport::TokenBucket> per_connection_bucket_;
  std::unique_ptr<transport::RateLimitGroup> group_;
  std::atomic<uint32_t> next_loop_{0};
  std::atomic<int> port_{0};
  std::atomic<size_t> connections_{0};
  std::atomic<bool> draining_{false};
  bool started_ = false;
  bool stopped_ = false;
  // ServerOptions::register_target; on loop 0's thread only.
  std::unique_ptr<naming::Registrar> registrar_;

  // After listening: registers (when configured).
  absl::Status StartRegistration();
  // Revokes the registration and frees it, before the drain.
  void StopRegistration();
};

absl::Status ServerImpl::RegisterMethods(std::vector<MethodDesc> methods) {
  absl::flat_hash_set<std::string> names;
  for (const MethodDesc& m : methods) {
    absl::Status s = CheckMethod(m);
    if (!s.ok()) return s;
    if (!names.insert(m.full_name).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("method \"", m.full_name, "\" is listed twice"));
    }
  }
  for (MethodDesc& m : methods) {
    std::string name = m.full_name;
    shared_.services.insert(name.substr(0, name.find('/')));
    shared_.methods.emplace(std::move(name), std::move(m));
  }
  return absl::OkStatus();
}

absl::Status ServerImpl::RegisterMethod(MethodDesc method) {
  std::vector<MethodDesc> one;
  one.push_back(std::move(method));
  return RegisterMethods(std::move(one));
}

absl::Status ServerImpl::CheckMethod(const MethodDesc& method) const {
  if (started_) {
    return absl::FailedPreconditionError(
        "RegisterMethod() must be called before Start()");
  }
  const std::string& name = method.full_name;
  size_t slash = name.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == name.size() ||
      name.find('/', slash + 1) != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "method name \"", name, "\" is not package.Service/Method"));
  }
  if (method.request_prototype == nullptr ||
      method.response_prototype == nullptr || method.handler == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "method \"", name, "\" lacks a request type, response type or handler"));
  }
  if (shared_.methods.contains(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("method \"", name, "\" is already registered"));
  }
  return absl::OkStatus();
}

absl::Status ServerImpl::Start() {
  if (started_) return absl::FailedPreconditionError("server already started");
  const ServerOptions& o = shared_.options;
  absl::Status limits_ok = ValidateFrameLimits(o.limits);
  if (!limits_ok.ok()) return limits_ok;
  absl::StatusOr<std::unique_ptr<Admission>> admission =
      Admission::Create(o, shared_.methods);
  if (!admission.ok()) return admission.status();
  shared_.admission = *std::move(admission);
  // Loudly: a server failing calls on purpose must not pass for a sick one.
  for (const std::string& rule : shared_.admission->DescribeFaults()) {
    std::cerr << "bevrpc: FAULT INJECTION ON: " << rule << std::endl;
  }
  absl::StatusOr<transport::SocketAddress> addr =
      transport::SocketAddress::Parse(o.listen_address);
  if (!addr.ok()) return addr.status();
  if (o.tls.enabled()) {
    auto tls = transport::TlsContext::CreateServer(o.tls);
    if (!tls.ok()) return tls.status();
    tls_ = *std::move(tls);
  }
  if (o.enable_metrics) {
    if (o.metrics_registry == nullptr) {
      return absl::InvalidArgumentError(
          "enable_metrics is on but metrics_registry is null");
    }
    absl::StatusOr<std::unique_ptr<ServerMetrics>> metrics =
        ServerMetrics::Create(o.metrics_registry, shared_.methods);
    if (!metrics.ok()) return metrics.status();
    shared_.metrics = *std::move(metrics);
  } else if (o.metrics_registry != nullptr) {
    // Calls are not recorded; the process metrics cost nothing per call
    // (computed when /metrics is read), so /metrics still shows them.
    absl::Status process = metrics::RegisterProcessMetrics(o.metrics_registry);
    if (!process.ok()) return process;
  }
  if (o.loops != nullptr) {
    loops_ = o.loops;
  } else {
    absl::StatusOr<std::unique_ptr<transport::LoopPool>> loops =
        transport::LoopPool::Start(o.io_threads, "bevrpc-io");
    if (!loops.ok()) return loops.status();
    owned_loops_ = *std::move(loops);
    loops_ = owned_loops_.get();
  }
  for (int i = 0; i < loops_->size(); ++i) {
    loop_sessions_.push_back(std::make_unique<LoopSessions>());
    loop_sessions_.back()->loop = loops_->loop(i);
  }
  if (o.per_connection_rate_limit.enabled()) {
    auto bucket = transport::TokenBucket::Create(o.per_connection_rate_limit);
    if (!bucket.ok()) return bucket.status();
    per_connection_bucket_ = *std::move(bucket);
  }
  if (o.server_rate_limit.enabled()) {
    auto group =
        transport::RateLimitGroup::Create(loops_->loop(0), o.server_rate_limit);
    if (!group.ok()) return group.status();
    group_ = *std::move(group);
  }
  shared_.workers =
      std::make_unique<WorkerPool>(o.worker_threads, o.max_queued_calls);
  WorkerPool::Options streams;
  streams.min_threads = 0;
  streams.max_threads = std::max(o.max_stream_threads, 1);
  streams.refuse_when_busy = true;
  streams.name = "bevrpc-stream";
  shared_.stream_workers = std::make_unique<WorkerPool>(streams);
  shared_.memory = std::make_unique<ByteBudget>(o.max_server_memory_bytes);

  // The listener lives on loop 0; create it there.
  absl::Status status;
  Notification created;
  transport::ListenerOptions lo;
  lo.reuse_port = o.reuse_port;
  loops_->loop(0)->Post([&] {
    auto listener = transport::Listener::Create(
        loops_->loop(0), *addr, lo, [this](int fd) {
          OnAccept(fd, shared_.options.http == HttpMode::kSamePort
                           ? SessionProtocol::kSniff
                           : SessionProtocol::kRpc);
        });
    if (listener.ok()) {
      listener_ = *std::move(listener);
      port_.store(listener_->port(), std::memory_order_release);
    } else {
      status = listener.status();
    }
    created.Notify();
  });
  created.WaitForNotification();
  started_ = true;
  if (status.ok()) status = StartAdminListener();
  if (status.ok() && shared_.metrics != nullptr) {
    status = shared_.metrics->AddLevels(this);
  }
  if (status.ok()) status = StartRegistration();
  if (!status.ok()) {
    Shutdown(absl::ZeroDuration());
    return status;
  }
  if (shared_.options.http != HttpMode::kOff && shared_.options.enable_metrics) {
    status_page_->StartSampling();
  }
  return absl::OkStatus();
}

absl::Status ServerImpl::StartAdminListener() {
  const ServerOptions& o = shared_.options;
  if (o.http != HttpMode::kSeparateAddress) return absl::OkStatus();
  if (o.admin_address.empty()) {
    return absl::InvalidArgumentError(
        "http is kSeparateAddress but admin_address is empty");
  }
  absl::StatusOr<transport::SocketAddress> addr =
      transport::SocketAddress::Parse(o.admin_address);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin_address \"", o.admin_address, "\": ", addr.status().message()));
  }
  absl::Status status;
  Notification created;
  loops_->loop(0)->Post([&] {
    auto listener = transport::Listener::Create(
        loops_->loop(0), *addr, transport::ListenerOptions(),
        [this](int fd) { OnAccept(fd, SessionProtocol::kHttp); });
    if (listener.ok()) {
      admin_listener_ = *std::move(listener);
      admin_port_.store(admin_listener_->port(), std::memory_order_release);
    } else {
      status = listener.status();
    }
    created.Notify();
  });
  created.WaitForNotification();
  return status;
}

absl::Status ServerImpl::StartRegistration() {
  const ServerOptions& o = shared_.options;
  if (o.register_target.empty()) return absl::OkStatus();
  std::string advertise = o.advertise;
  if (advertise.empty()) {
    // The listening host (it parsed at Start()), with the bound port.
    naming::HostPort listen;
    absl::string_view text = o.listen_address;
    listen.host = std::string(text.substr(0, text.rfind(':')));
    if (!listen.host.empty() && listen.host.front() == '[') {
      listen.host = listen.host.substr(1, listen.host.size() - 2);
    }
    if (listen.host == "0.0.0.0" || listen.host == "::" ||
        listen.host.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "register_target: the server listens on ", o.listen_address,
          ", which clients cannot connect to; set advertise (HOST:PORT)"));
    }
    listen.port = static_cast<uint16_t>(port_.load(std::memory_order_acquire));
    advertise = listen.ToString();
  }
  absl::Status status;
  Notification created;
  loops_->loop(0)->Post([&] {
    auto r = naming::Registrar::Create(loops_->loop(0), o.register_target,
                                       advertise, o.registration);
    status = r.status();
    if (r.ok()) {
      registrar_ = *std::move(r);
      registrar_->Start();
    }
    created.Notify();
  });
  created.WaitForNotification();
  return status;
}

void ServerImpl::StopRegistration() {
  Notification stopped;
  loops_->loop(0)->Post([&] {
    if (registrar_ == nullptr) {
      stopped.Notify();
      return;
    }
    registrar_->Revoke([this, &stopped] {
      // Freed from the loop, not inside its own callback.
      loops_->loop(0)->Post([this, &stopped] {
        registrar_.reset();
        stopped.Notify();
      });
    });
  });
  // Revoke() gives up on etcd after registration.revoke_timeout.
  stopped.WaitForNotification();
}

void ServerImpl::OnAccept(int fd, SessionProtocol protocol) {
  if (connections_.load(std::memory_order_relaxed) >=
      shared_.options.max_connections) {
    close(fd);  // Over the limit: refuse before allocating anything.
    return;
  }
  connections_.fetch_add(1, std::memory_order_relaxed);
  uint32_t i = next_loop_.fetch_add(1, std::memory_order_relaxed);
  LoopSessions* ls = loop_sessions_[i % loop_sessions_.size()].get();
  if (ls->loop == loops_->loop(0)) {
    AdoptOnLoop(ls, fd, protocol);
  } else {
    ls->loop->Post([this, ls, fd, protocol] { AdoptOnLoop(ls, fd, protocol); });
  }
}

void ServerImpl::AdoptOnLoop(LoopSessions* ls, int fd,
                             SessionProtocol protocol) {
  if (tls_ != nullptr && protocol != SessionProtocol::kHttp) {
    // TLS or not is told by the first byte (a handshake record is 0x16),
    // peeked so that the socket goes to OpenSSL untouched.
    transport::PeekFirstByte(
        ls->loop, fd, shared_.options.frame_timeout,
        [this, ls, fd, protocol](absl::StatusOr<uint8_t> first) {
          if (!first.ok()) {
            close(fd);  // Silent or gone before saying anything.
            connections_.fetch_sub(1, std::memory_order_relaxed);
            return;
          }
          AdoptSniffed(ls, fd, protocol,
                       *first == transport::kTlsHandshakeByte);
        });
    return;
  }
  auto conn = transport::Connection::Adopt(ls->loop, fd,
                                           shared_.options.connection);
  if (!conn.ok()) {
    connections_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  AddSession(ls, *std::move(conn), protocol, /*refuse_plaintext=*/false);
}

void ServerImpl::AdoptSniffed(LoopSessions* ls, int fd,
                              SessionProtocol protocol, bool tls) {
  if (!tls) {
    auto conn = transport::Connection::Adopt(ls->loop, fd,
                                             shared_.options.connection);
    if (!conn.ok()) {
      connections_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    AddSession(ls, *std::move(conn), protocol, /*refuse_plaintext=*/true);
    return;
  }
  auto conn = transport::Connection::AdoptTls(
      ls->loop, fd, shared_.options.connection, *tls_,
      shared_.options.frame_timeout, [](absl::Status handshake) {
        static std::atomic<int64_t> last_log_ns{0};
        const int64_t now = absl::GetCurrentTimeNanos();
        int64_t last = last_log_ns.load(std::memory_order_relaxed);
        if (!handshake.ok() && now - last >= 1000000000 &&
            last_log_ns.compare_exchange_strong(last, now)) {
          std::cerr << "bevrpc server: " << handshake.message() << std::endl;
        }
      });
  if (!conn.ok()) {
    connections_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  AddSession(ls, *std::move(conn), protocol, /*refuse_plaintext=*/false);
}

void ServerImpl::AddSession(LoopSessions* ls,
                            std::unique_ptr<transport::Connection> conn,
                            SessionProtocol protocol, bool refuse_plaintext) {
  if (!refuse_plaintext &&
      (per_connection_bucket_ != nullptr || group_ != nullptr)) {
    conn->SetRateLimits(per_connection_bucket_.get(), group_.get())
        .IgnoreError();  // Best effort: a socket always accepts limits.
  }
  auto session = std::make_unique<ServerSession>(
      &shared_, std::move(conn), [this, ls](ServerSession* s) {
        // Destroy later, outside the session's own callback.
        ls->loop->Post([this, ls, s] {
          ls->sessions.erase(s);
          connections_.fetch_sub(1, std::memory_order_relaxed);
        });
      },
      protocol);
  ServerSession* raw = session.get();
  if (refuse_plaintext) raw->RefusePlaintext();
  ls->sessions.emplace(raw, std::move(session));
  raw->Start();
}

void ServerImpl::ForEachSession(absl::FunctionRef<void(ServerSession*)> fn) {
  for (auto& ls : loop_sessions_) {
    Notification done;
    LoopSessions* l = ls.get();
    l->loop->Post([l, &fn, &done] {
      std::vector<ServerSession*> sessions;
      for (auto& [s, owned] : l->sessions) sessions.push_back(s);
      for (ServerSession* s : sessions) fn(s);
      done.Notify();
    });
    done.WaitForNotification();
  }
}

bool ServerImpl::WaitForConnections(absl::Time deadline, bool rpc_only) {
  while ((rpc_only ? rpc_connections()
                   : connections_.load(std::memory_order_relaxed)) != 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

void ServerImpl::WaitForHeldCalls() {
  // With every connection gone, a pool still alive belongs to a call an
  // async handler has not finished: its Completion will post to a loop, so
  // the loops run until it does (gRPC's server waits for its callbacks the
  // same way). A handler that never finishes its call is a bug; say which.
  if (connections_.load(std::memory_order_relaxed) != 0) return;
  absl::Time next_log = absl::Now() + absl::Seconds(5);
  while (shared_.live_call_pools.load(std::memory_order_acquire) != 0) {
    if (absl::Now() >= next_log) {
      std::cerr << "bevrpc server: shutdown is waiting for calls that "
                   "handlers still hold (a Completion not yet finished or "
                   "destroyed), from "
                << shared_.live_call_pools.load(std::memory_order_relaxed)
                << " connection(s)\n";
      next_log = absl::Now() + absl::Seconds(5);
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
}

void ServerImpl::Shutdown(absl::Duration grace) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  status_page_->StopSampling();
  draining_.store(true, std::memory_order_release);
  // Deregistered first: clients stop picking this server before it drains.
  StopRegistration();
  Notification unlistened;
  loops_->loop(0)->Post([&] {
    listener_.reset();
    unlistened.Notify();
  });
  unlistened.WaitForNotification();

  // HTTP connections (and the admin listener) go on serving during the
  // drain, so that health checks see 503; they do not hold it up.
  ForEachSession([](ServerSession* s) { s->BeginDrain(); });
  if (!WaitForConnections(absl::Now() + grace, /*rpc_only=*/true)) {
    ForEachSession([](ServerSession* s) { s->AbortCalls(); });
    // Closing waits for the peers' EOF for at most the connection linger.
    if (!WaitForConnections(absl::Now() + shared_.options.connection.linger +
                                absl::Milliseconds(100),
                            /*rpc_only=*/true)) {
      ForEachSession([](ServerSession* s) {
        if (!s->is_http()) s->CloseNow();
      });
      WaitForConnections(absl::Now() + absl::Seconds(1), /*rpc_only=*/true);
    }
  }
  Notification admin_unlistened;
  loops_->loop(0)->Post([&] {
    admin_listener_.reset();
    admin_unlistened.Notify();
  });
  admin_unlistened.WaitForNotification();
  // A connection still sniffing may have turned HTTP meanwhile: every HTTP
  // session closes once its request under way is answered.
  ForEachSession([](ServerSession* s) {
    s->BeginDrain();
    s->FinishHttp();
  });
  if (!WaitForConnections(absl::Now() + shared_.options.connection.linger +
                          absl::Milliseconds(100))) {
    ForEachSession([](ServerSession* s) { s->CloseNow(); });
    WaitForConnections(absl::Now() + absl::Seconds(1));
  }
  // Sync handlers still running finish (their results go nowhere).
  shared_.workers->Shutdown();
  shared_.stream_workers->Shutdown();
  WaitForHeldCalls();
  if (owned_loops_ != nullptr) {
    owned_loops_->Stop();
    // Loops are stopped: what remains is destroyed on this thread.
    loop_sessions_.clear();
  } else {
    // Borrowed loops keep running: destroy each loop's sessions on it,
    // after every task already queued there (which may refer to them).
    for (auto& ls : loop_sessions_) {
      Notification done;
      LoopSessions* l = ls.get();
      l->loop->Post([l, &done] {
        l->sessions.clear();
        done.Notify();
      });
      done.WaitForNotification();
    }
    loop_sessions_.clear();
  }
  // Before what the levels read goes away.
  if (shared_.metrics != nullptr) shared_.metrics->RemoveLevels();
  group_.reset();
  owned_loops_.reset();
  loops_ = nullptr;
}

}  // namespace internal

Server::Server(ServerOptions options)
    : impl_(std::make_unique<internal::ServerImpl>(std::move(options))) {}
Server::~Server() = default;
absl::Status Server::RegisterMethod(MethodDesc method) {
  return impl_->RegisterMethod(std::move(method));
}
absl::Status Server::RegisterService(Service* service) {
  return impl_->RegisterMethods(service->Methods());
}
absl::Status Server::AddHttpPage(std::string path, std::string title,
                                 admin::HttpPageHandler handler) {
  return impl_->AddHttpPage(std::move(path), std::move(title),
                            std::move(handler));
}
absl::Status Server::Start() { return impl_->Start(); }
int Server::port() const { return impl_->port(); }
int Server::admin_port() const { return impl_->admin_port(); }
std::string Server::admin_address() const { return impl_->admin_address(); }
void Server::Shutdown(absl::Duration grace) { impl_->Shutdown(grace); }
size_t Server::num_connections() const { return impl_->num_connections(); }
absl::Status Server::ReloadTls() { return impl_->ReloadTls(); }
size_t Server::memory_in_use() const { return impl_->memory_in_use(); }
size_t Server::peak_memory_in_use() const {
  return impl_->peak_memory_in_use();
}
std::vector<std::string> Server::ServiceNames() const {
  return impl_->ServiceNames();
}
bool Server::draining() const { return impl_->draining(); }
size_t Server::calls_in_flight() const { return impl_->calls_in_flight(); }
size_t Server::concurrency_limit() const {
  return impl_->concurrency_limit();
}

const trace::RpczStore& Server::rpcz() const { return impl_->rpcz(); }

}  // namespace bevrpc
