#include "transport/testing/dns_server.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "transport/address.h"

namespace bevrpc::transport::testing {
namespace {

std::string Key(absl::string_view name) {
  return absl::AsciiStrToLower(absl::StripSuffix(name, "."));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DnsTestServer>> DnsTestServer::Start() {
  std::unique_ptr<DnsTestServer> server(new DnsTestServer());
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
    int err = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind: ", std::strerror(err)));
  }
  absl::StatusOr<SocketAddress> bound = SocketAddress::FromSocketName(fd);
  if (!bound.ok()) {
    close(fd);
    return bound.status();
  }
  server->port_ = bound->port();
  // evdns's server reads until EAGAIN.
  evutil_make_socket_nonblocking(fd);
  DnsTestServer* s = server.get();
  if (!s->loop_.RunOnLoop([s, fd] {
        s->server_port_ = evdns_add_server_port_with_base(
            s->loop_.loop()->base(), fd, 0, &DnsTestServer::OnRequest, s);
      })) {
    return absl::DeadlineExceededError("dns test server loop did not start");
  }
  if (s->server_port_ == nullptr) {
    close(fd);
    return absl::InternalError("evdns_add_server_port_with_base failed");
  }
  return server;
}

DnsTestServer::~DnsTestServer() {
  // Closes the socket too. loop_ then stops its thread.
  loop_.RunOnLoop([this] { evdns_close_server_port(server_port_); });
}

std::string DnsTestServer::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status DnsTestServer::SetRecords(absl::string_view name,
                                       const std::vector<std::string>& addresses,
                                       int ttl_seconds) {
  Entry e;
  e.ttl = ttl_seconds;
  for (const std::string& a : addresses) {
    in_addr v4;
    in6_addr v6;
    if (inet_pton(AF_INET, a.c_str(), &v4) == 1) {
      e.ipv4.emplace_back(reinterpret_cast<const char*>(&v4), sizeof(v4));
    } else if (inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
      e.ipv6.emplace_back(reinterpret_cast<const char*>(&v6), sizeof(v6));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", a, "\" is not a numeric IPv4 or IPv6 address"));
    }
  }
  MutexLock lock(&mu_);
  entries_[Key(name)] = std::move(e);
  return absl::OkStatus();
}

void DnsTestServer::Remove(absl::string_view name) {
  MutexLock lock(&mu_);
  entries_.erase(Key(name));
}

void DnsTestServer::SetServfail(absl::string_view name) {
  MutexLock lock(&mu_);
  entries_[Key(name)] = Entry{Mode::kServfail, {}, {}, 0};
}

void DnsTestServer::SetNoAnswer(absl::string_view name) {
  MutexLock lock(&mu_);
  entries_[Key(name)] = Entry{Mode::kNoAnswer, {}, {}, 0};
}

int DnsTestServer::QueryCount(absl::string_view name) const {
  MutexLock lock(&mu_);
  auto it = counts_.find(Key(name));
  return it == counts_.end() ? 0 : it->second;
}

bool DnsTestServer::WaitForQueryCount(absl::string_view name, int n,
                                      absl::Duration timeout) const {
  const std::string key = Key(name);
  MutexLock lock(&mu_);
  return counted_.WaitUntil(&mu_, timeout, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto it = counts_.find(key);
    return it != counts_.end() && it->second >= n;
  });
}

void DnsTestServer::OnRequest(evdns_server_request* req, void* arg) {
  static_cast<DnsTestServer*>(arg)->Answer(req);
}

void DnsTestServer::Answer(evdns_server_request* req) {
  int rcode = DNS_ERR_NONE;
  bool drop = false;
  {
    MutexLock lock(&mu_);
    for (int i = 0; i < req->nquestions; ++i) {
      const evdns_server_question* q = req->questions[i];
      const std::string key = Key(q->name);
      ++counts_[key];
      auto it = entries_.find(key);
      if (it == entries_.end()) {
        rcode = DNS_ERR_NOTEXIST;
        continue;
      }
      const Entry& e = it->second;
      if (e.mode == Mode::kNoAnswer) drop = true;
      if (e.mode == Mode::kServfail) rcode = DNS_ERR_SERVERFAILED;
      if (e.mode != Mode::kRecords) continue;
      // The reply must carry the name exactly as asked (random case).
      if (q->type == EVDNS_TYPE_A) {
        for (const std::string& a : e.ipv4) {
          evdns_server_request_add_a_reply(req, q->name, 1, a.data(), e.ttl);
        }
      } else if (q->type == EVDNS_TYPE_AAAA) {
        for (const std::string& a : e.ipv6) {
          evdns_server_request_add_aaaa_reply(req, q->name, 1, a.data(), e.ttl);
        }
      }
    }
    counted_.SignalAll();
  }
  if (drop) {
    evdns_server_request_drop(req);
  } else {
    evdns_server_request_respond(req, rcode);
  }
}

}  // namespace bevrpc::transport::testing
