#include "tests/testing/etcd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace bevrpc::testing {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

// The string value of the first `"field":"..."` (or number) in `json`.
std::optional<std::string> JsonField(absl::string_view json,
                                     absl::string_view field) {
  std::string needle = absl::StrCat("\"", field, "\":");
  size_t at = json.find(needle);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = json.substr(at + needle.size());
  if (!rest.empty() && rest[0] == '"') {
    size_t end = rest.find('"', 1);
    if (end == absl::string_view::npos) return std::nullopt;
    return std::string(rest.substr(1, end - 1));
  }
  size_t end = rest.find_first_of(",}");
  return std::string(rest.substr(0, end));
}

int64_t JsonInt(absl::string_view json, absl::string_view field) {
  int64_t v = 0;
  std::optional<std::string> s = JsonField(json, field);
  if (s.has_value() && !absl::SimpleAtoi(*s, &v)) v = 0;
  return v;
}

std::string B64(absl::string_view s) { return absl::Base64Escape(s); }

std::string DecodeChunked(absl::string_view body) {
  std::string out;
  while (!body.empty()) {
    size_t eol = body.find("\r\n");
    if (eol == absl::string_view::npos) break;
    size_t n = std::strtoul(std::string(body.substr(0, eol)).c_str(),
                            nullptr, 16);
    if (n == 0) break;
    out.append(body.substr(eol + 2, n).data(), std::min(n, body.size()));
    body.remove_prefix(std::min(body.size(), eol + 2 + n + 2));
  }
  return out;
}

}  // namespace

absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sin);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("bind: ", strerror(errno)));
  }
  close(fd);
  return ntohs(sin.sin_port);
}

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(
    absl::Duration timeout) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(tmp ? tmp : "/tmp", "/etcd-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
  }
  absl::StatusOr<int> client = FreeLoopbackPort();
  absl::StatusOr<int> peer = FreeLoopbackPort();
  if (!client.ok()) return client.status();
  if (!peer.ok()) return peer.status();
  if (*client == *peer) return absl::InternalError("same port twice");
  std::unique_ptr<EtcdProcess> etcd(new EtcdProcess(tmpl, *client, *peer));
  if (absl::Status s = etcd->Spawn(timeout); !s.ok()) return s;
  return etcd;
}

EtcdProcess::EtcdProcess(std::string data_dir, int client_port, int peer_port)
    : data_dir_(std::move(data_dir)),
      client_port_(client_port),
      peer_port_(peer_port) {}

EtcdProcess::~EtcdProcess() { (void)Stop(); }

std::string EtcdProcess::endpoint() const {
  return absl::StrCat("127.0.0.1:", client_port_);
}

absl::Status EtcdProcess::Spawn(absl::Duration timeout) {
  std::string client_url = absl::StrCat("http://127.0.0.1:", client_port_);
  std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> args = {
      kEtcd,
      "--name=default",
      absl::StrCat("--data-dir=", data_dir_, "/data"),
      absl::StrCat("--listen-client-urls=", client_url),
      absl::StrCat("--advertise-client-urls=", client_url),
      absl::StrCat("--listen-peer-urls=", peer_url),
      absl::StrCat("--initial-advertise-peer-urls=", peer_url),
      absl::StrCat("--initial-cluster=default=", peer_url),
      "--log-level=warn",
  };
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = absl::StrCat(data_dir_, "/etcd.log");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(kEtcd, argv.data());
    _exit(127);
  }
  pid_ = pid;
  absl::Time deadline = absl::Now() + timeout;
  absl::Status last;
  // Polled: nothing signals "etcd is ready"; bounded by `timeout`.
  while (absl::Now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      return absl::InternalError(absl::StrCat(
          "etcd exited during startup (status ", status, "): ",
          text.str().substr(text.str().size() > 2000
                                ? text.str().size() - 2000
                                : 0)));
    }
    absl::StatusOr<std::string> r =
        Post("/v3/kv/range", absl::StrCat(R"({"key":")", B64("probe"), "\"}"));
    if (r.ok()) return absl::OkStatus();
    last = r.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  (void)Stop();
  return absl::DeadlineExceededError(
      absl::StrCat("etcd did not answer within ", absl::FormatDuration(timeout),
                   ": ", last.ToString()));
}

absl::Status EtcdProcess::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status EtcdProcess::Restart(absl::Duration timeout) {
  if (absl::Status s = Stop(); !s.ok()) return s;
  return Spawn(timeout);
}

absl::StatusOr<std::string> EtcdProcess::Post(absl::string_view path,
                                              absl::string_view json) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(client_port_);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", strerror(errno)));
  }
  std::string request = absl::StrCat(
      "POST ", path, " HTTP/1.1\r\nHost: ", endpoint(),
      "\r\nContent-Type: application/json\r\nContent-Length: ", json.size(),
      "\r\nConnection: close\r\n\r\n", json);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent,
                     MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError("send failed");
    }
    sent += n;
  }
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
    }
    response.append(buf, n);
  }
  close(fd);
  size_t head_end = response.find("\r\n\r\n");
  if (response.size() < 12 || head_end == std::string::npos) {
    return absl::UnavailableError("short HTTP response");
  }
  int code = std::atoi(response.substr(9, 3).c_str());
  std::string head = response.substr(0, head_end);
  std::string body = response.substr(head_end + 4);
  if (head.find("chunked") != std::string::npos) body = DecodeChunked(body);
  if (code != 200) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd ", path, ": HTTP ", code, ": ", body));
  }
  return body;
}

absl::StatusOr<int64_t> EtcdProcess::Put(absl::string_view key,
                                         absl::string_view value,
                                         int64_t lease) {
  std::string json = absl::StrCat(R"({"key":")", B64(key), R"(","value":")",
                                  B64(value), "\"");
  if (lease != 0) absl::StrAppend(&json, R"(,"lease":")", lease, "\"");
  json += "}";
  absl::StatusOr<std::string> r = Post("/v3/kv/put", json);
  if (!r.ok()) return r.status();
  return JsonInt(*r, "revision");
}

absl::StatusOr<int64_t> EtcdProcess::Delete(absl::string_view key) {
  absl::StatusOr<std::string> r = Post(
      "/v3/kv/deleterange", absl::StrCat(R"({"key":")", B64(key), "\"}"));
  if (!r.ok()) return r.status();
  return JsonInt(*r, "revision");
}

absl::Status EtcdProcess::Compact(int64_t revision) {
  return Post("/v3/kv/compaction",
              absl::StrCat(R"({"revision":")", revision,
                           R"(","physical":true})"))
      .status();
}

absl::StatusOr<int64_t> EtcdProcess::Revision() {
  absl::StatusOr<std::string> r = Post(
      "/v3/kv/range", absl::StrCat(R"({"key":")", B64("probe"), "\"}"));
  if (!r.ok()) return r.status();
  return JsonInt(*r, "revision");
}

bool EtcdProcess::WaitForKey(absl::string_view key, bool present,
                             absl::Duration timeout,
                             absl::FunctionRef<bool(int64_t)> lease_ok) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t lease = 0;
    absl::StatusOr<std::optional<std::string>> got = Get(key, &lease);
    if (got.ok() && got->has_value() == present &&
        (!present || lease_ok(lease))) {
      return true;
    }
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<std::optional<std::string>> EtcdProcess::Get(
    absl::string_view key, int64_t* lease) {
  absl::StatusOr<std::string> r =
      Post("/v3/kv/range", absl::StrCat(R"({"key":")", B64(key), "\"}"));
  if (!r.ok()) return r.status();
  size_t kvs = r->find("\"kvs\":");
  if (kvs == std::string::npos) return std::optional<std::string>();
  absl::string_view kv = absl::string_view(*r).substr(kvs);
  if (lease != nullptr) *lease = JsonInt(kv, "lease");
  std::string value;
  std::optional<std::string> b64 = JsonField(kv, "value");
  if (b64.has_value() && !absl::Base64Unescape(*b64, &value)) {
    return absl::InternalError("bad base64 from etcd");
  }
  return std::optional<std::string>(std::move(value));
}

absl::StatusOr<int64_t> EtcdProcess::LeaseTtl(int64_t lease) {
  absl::StatusOr<std::string> r = Post(
      "/v3/lease/timetolive", absl::StrCat(R"({"ID":")", lease, "\"}"));
  if (!r.ok()) return r.status();
  return JsonInt(*r, "TTL");
}

absl::Status EtcdProcess::RevokeLease(int64_t lease) {
  return Post("/v3/lease/revoke", absl::StrCat(R"({"ID":")", lease, "\"}"))
      .status();
}

}  // namespace bevrpc::testing
