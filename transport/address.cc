#include "transport/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace bevrpc::transport {

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view host_port) {
  std::string host;
  absl::string_view port_text;
  if (!host_port.empty() && host_port.front() == '[') {
    size_t close = host_port.find(']');
    if (close == absl::string_view::npos || close + 1 >= host_port.size() ||
        host_port[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", host_port, "\" is not [ipv6]:port"));
    }
    host = std::string(host_port.substr(1, close - 1));
    port_text = host_port.substr(close + 2);
  } else {
    size_t colon = host_port.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", host_port, "\" is not host:port"));
    }
    host = std::string(host_port.substr(0, colon));
    port_text = host_port.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "address \"", host_port, "\": write IPv6 addresses as [addr]:port"));
    }
  }
  uint32_t port;
  if (!absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", host_port, "\" has a bad port \"",
                     port_text, "\""));
  }
  absl::StatusOr<std::vector<SocketAddress>> all =
      ResolveAll(host, static_cast<uint16_t>(port));
  if (!all.ok()) return all.status();
  return all->front();
}

absl::StatusOr<std::vector<SocketAddress>> SocketAddress::ResolveAll(
    const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string port_str = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), port_str.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot resolve \"", host, "\": ", gai_strerror(rc)));
  }
  std::vector<SocketAddress> out;
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SocketAddress a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = ai->ai_addrlen;
    bool seen = false;
    for (const SocketAddress& b : out) {
      seen = seen || (b.length == a.length &&
                      std::memcmp(&b.storage, &a.storage, a.length) == 0);
    }
    if (!seen) out.push_back(a);
  }
  freeaddrinfo(result);
  if (out.empty()) {
    return absl::UnavailableError(
        absl::StrCat("\"", host, "\" resolved to no usable address"));
  }
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::FromSocketName(int fd) {
  SocketAddress out;
  out.length = sizeof(out.storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage),
                  &out.length) != 0) {
    return absl::InternalError(
        absl::StrCat("getsockname: ", std::strerror(errno)));
  }
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::FromPeerName(int fd) {
  SocketAddress out;
  out.length = sizeof(out.storage);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&out.storage),
                  &out.length) != 0) {
    return absl::InternalError(
        absl::StrCat("getpeername: ", std::strerror(errno)));
  }
  return out;
}

int SocketAddress::port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = "?";
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr,
              text, sizeof(text));
    return absl::StrCat(text, ":", port());
  }
  if (storage.ss_family == AF_INET6) {
    inet_ntop(AF_INET6,
              &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, text,
              sizeof(text));
    return absl::StrCat("[", text, "]:", port());
  }
  return "unknown";
}

}  // namespace bevrpc::transport
