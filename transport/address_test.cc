// Tests for SocketAddress: parsing host:port text, and reading the addresses
// of real sockets. Only loopback names are resolved (no DNS traffic).
#include "transport/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bevrpc::transport {
namespace {

using ::testing::HasSubstr;

TEST(SocketAddressTest, ParsesIpv4Literal) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse("127.0.0.1:80");
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->storage.ss_family, AF_INET);
  EXPECT_EQ(addr->length, sizeof(sockaddr_in));
  EXPECT_EQ(addr->port(), 80);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(addr->sa());
  EXPECT_EQ(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
  EXPECT_EQ(addr->ToString(), "127.0.0.1:80");
}

TEST(SocketAddressTest, ParsesBracketedIpv6Literal) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse("[::1]:80");
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->storage.ss_family, AF_INET6);
  EXPECT_EQ(addr->length, sizeof(sockaddr_in6));
  EXPECT_EQ(addr->port(), 80);
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(addr->sa());
  EXPECT_EQ(std::memcmp(&sin6->sin6_addr, &in6addr_loopback, sizeof(in6_addr)),
            0);
  EXPECT_EQ(addr->ToString(), "[::1]:80");
}

TEST(SocketAddressTest, ResolvesLocalhostWithPortZero) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse("localhost:0");
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->port(), 0);
  ASSERT_TRUE(addr->storage.ss_family == AF_INET ||
              addr->storage.ss_family == AF_INET6)
      << addr->storage.ss_family;
  if (addr->storage.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(addr->sa());
    EXPECT_EQ(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    EXPECT_EQ(addr->ToString(), "127.0.0.1:0");
  } else {
    EXPECT_EQ(addr->ToString(), "[::1]:0");
  }
}

TEST(SocketAddressTest, PortBoundsAreInclusive) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse("127.0.0.1:65535");
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->port(), 65535);
  EXPECT_EQ(addr->ToString(), "127.0.0.1:65535");
}

// Every rejected input is named in the error message, so a user with many
// addresses in a config file can tell which one is wrong.
class SocketAddressParseErrorTest
    : public ::testing::TestWithParam<const char*> {};

TEST_P(SocketAddressParseErrorTest, RejectsWithMessageNamingInput) {
  const std::string input = GetParam();
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(input);
  ASSERT_FALSE(addr.ok()) << "parsed \"" << input << "\" as "
                          << addr->ToString();
  EXPECT_EQ(addr.status().code(), absl::StatusCode::kInvalidArgument)
      << addr.status();
  EXPECT_THAT(std::string(addr.status().message()), HasSubstr(input));
}

INSTANTIATE_TEST_SUITE_P(
    BadInputs, SocketAddressParseErrorTest,
    ::testing::Values("nohost",          // no port at all
                      "1.2.3.4:99999",   // port out of range
                      "::1:80",          // unbracketed IPv6
                      "127.0.0.1:",      // empty port
                      "127.0.0.1:http",  // non-numeric port
                      "127.0.0.1:-1",    // negative port
                      ":80",             // empty host
                      "[::1]",           // bracketed, no port
                      "[::1]80",         // bracketed, no colon
                      "[::1:80"));       // unterminated bracket

TEST(SocketAddressTest, OutOfRangePortMessageNamesThePort) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse("1.2.3.4:99999");
  ASSERT_FALSE(addr.ok());
  EXPECT_THAT(std::string(addr.status().message()), HasSubstr("99999"));
}

TEST(SocketAddressTest, UnbracketedIpv6MessageSaysHowToWriteIt) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse("::1:80");
  ASSERT_FALSE(addr.ok());
  EXPECT_THAT(std::string(addr.status().message()), HasSubstr("["))
      << addr.status();
}

TEST(SocketAddressTest, FromSocketNameAndPeerNameOfLoopbackConnection) {
  int server = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(server, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  ASSERT_EQ(listen(server, 4), 0);

  absl::StatusOr<SocketAddress> bound = SocketAddress::FromSocketName(server);
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_GT(bound->port(), 0);
  EXPECT_EQ(bound->ToString(), absl::StrCat("127.0.0.1:", bound->port()));

  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  ASSERT_EQ(connect(client, bound->sa(), bound->length), 0)
      << std::strerror(errno);
  absl::StatusOr<SocketAddress> peer = SocketAddress::FromPeerName(client);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->ToString(), bound->ToString());

  absl::StatusOr<SocketAddress> local = SocketAddress::FromSocketName(client);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_GT(local->port(), 0);
  EXPECT_NE(local->port(), bound->port());

  close(client);
  close(server);
}

TEST(SocketAddressTest, FromPeerNameOfUnconnectedSocketFails) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(SocketAddress::FromPeerName(fd).ok());
  close(fd);
}

TEST(SocketAddressTest, FromSocketNameOfBadFdFails) {
  EXPECT_FALSE(SocketAddress::FromSocketName(-1).ok());
}

}  // namespace
}  // namespace bevrpc::transport
