// Target: what a channel connects to, parsed from the one target grammar
// that Channel, generated stubs and every CLI command accept. Parsing only:
// no name is resolved here (rpc/naming resolvers do that, on the channel's
// loop).
//
//   absl::StatusOr<Target> t = ParseTarget("list:///10.0.0.1:80,10.0.0.2:80");
//   // t->scheme == Target::Scheme::kList, t->endpoints has two HostPorts.
//
// Forms:
//   HOST:PORT, [V6]:PORT            every address HOST resolves to
//   dns:///HOST:PORT                resolved with evdns, re-resolved
//   dns://DNS_SERVER[:P]/HOST:PORT  the same, asking that server
//   list:///H1:P1,H2:P2,...         a fixed list
//   file:///ABS/PATH                one endpoint per line, reloaded
//   etcd://H:P[,H:P...]/PREFIX      every key under PREFIX/ in etcd
// A target that does not parse is INVALID_ARGUMENT naming the target, what
// is wrong and the accepted forms.
//
// Plain values; thread-compatible.
#ifndef BEVRPC_RPC_NAMING_TARGET_H_
#define BEVRPC_RPC_NAMING_TARGET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bevrpc::naming {

// A host (a name, an IPv4 address, or an IPv6 address without its
// brackets) and a port, as written: nothing is resolved.
struct HostPort {
  std::string host;
  uint16_t port = 0;

  // "host:port", or "[v6]:port" when the host contains ':'.
  std::string ToString() const;
  friend bool operator==(const HostPort& a, const HostPort& b) {
    return a.host == b.host && a.port == b.port;
  }
};

// "HOST:PORT" or "[V6]:PORT"; the port must be 1-65535.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

struct Target {
  enum class Scheme { kHostPort, kDns, kList, kFile, kEtcd };

  Scheme scheme = Scheme::kHostPort;
  // kHostPort and kDns: one entry; kList: every entry, in order.
  std::vector<HostPort> endpoints;
  // kDns: the DNS server to ask, if the target names one (host empty
  // otherwise; port 53 unless given).
  HostPort dns_server;
  // kFile: the absolute path.
  std::string path;
  // kEtcd: the etcd members to talk to, and the key prefix, always ending
  // in '/' (so ".../echo" never matches keys of ".../echo2").
  std::vector<HostPort> etcd_members;
  std::string prefix;

  // The target as written canonically (parses back to the same Target).
  std::string ToString() const;
};

// The accepted forms, for error messages and --help texts.
inline constexpr absl::string_view kTargetForms =
    "HOST:PORT, [V6]:PORT, dns:///HOST:PORT, dns://DNS_SERVER/HOST:PORT, "
    "list:///HOST:PORT,HOST:PORT..., file:///ABSOLUTE/PATH, "
    "etcd://HOST:PORT[,HOST:PORT...]/PREFIX";

absl::StatusOr<Target> ParseTarget(absl::string_view text);

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_TARGET_H_
