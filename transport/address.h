// SocketAddress: a resolved TCP endpoint.
//
//   auto addr = transport::SocketAddress::Parse("127.0.0.1:8080");
//   auto addr6 = transport::SocketAddress::Parse("[::1]:8080");
//   auto any = transport::SocketAddress::Parse("localhost:0");
//
// Parse() accepts numeric IPv4 and bracketed IPv6 literals, and host names
// (resolved with getaddrinfo, so it may block: call it off the I/O loops).
// A plain value type; thread-compatible.
#ifndef BEVRPC_TRANSPORT_ADDRESS_H_
#define BEVRPC_TRANSPORT_ADDRESS_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bevrpc::transport {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  // The first address `host_port` resolves to.
  static absl::StatusOr<SocketAddress> Parse(absl::string_view host_port);
  // Every address `host` resolves to (getaddrinfo, so it may block; a
  // numeric address never does), without duplicates, in getaddrinfo's
  // order.
  static absl::StatusOr<std::vector<SocketAddress>> ResolveAll(
      const std::string& host, uint16_t port);
  // The address of a connected or bound socket.
  static absl::StatusOr<SocketAddress> FromSocketName(int fd);
  static absl::StatusOr<SocketAddress> FromPeerName(int fd);

  const sockaddr* sa() const {
    return reinterpret_cast<const sockaddr*>(&storage);
  }
  int port() const;
  // "127.0.0.1:80" or "[::1]:80".
  std::string ToString() const;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_ADDRESS_H_
