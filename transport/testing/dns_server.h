// DnsTestServer: a tiny authoritative DNS server on 127.0.0.1 (UDP, a free
// port) for tests, built on libevent's evdns server API and run by its own
// loop thread. No system resolver configuration is touched: point a
// DnsResolver (DnsResolverOptions::nameserver, or dns://IP:PORT/...) at
// address().
//
//   auto dns = transport::testing::DnsTestServer::Start().value();
//   ASSERT_TRUE(dns->SetRecords("svc.test", {"127.0.0.1", "::1"}).ok());
//   // resolve "svc.test" via dns->address() ...
//   ASSERT_TRUE(dns->WaitForQueryCount("svc.test", 2, absl::Seconds(10)));
//
// Behaviour per name (compared case-insensitively, a trailing dot ignored,
// since evdns randomizes the case of the names it sends):
//   SetRecords    A and AAAA answers from the given addresses; a query for
//                 a type the name has no address of gets an empty NOERROR
//                 answer (NODATA)
//   Remove        NXDOMAIN (also the default for names never set)
//   SetServfail   SERVFAIL
//   SetNoAnswer   the query is dropped (the client times out)
// Every question received is counted per name, whatever the answer.
//
// Thread-safe. The destructor closes the port and stops the thread.
#ifndef BEVRPC_TRANSPORT_TESTING_DNS_SERVER_H_
#define BEVRPC_TRANSPORT_TESTING_DNS_SERVER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

struct evdns_server_port;
struct evdns_server_request;

namespace bevrpc::transport::testing {

class DnsTestServer {
 public:
  // Binds 127.0.0.1:0 (UDP) and starts serving.
  static absl::StatusOr<std::unique_ptr<DnsTestServer>> Start();
  ~DnsTestServer();
  DnsTestServer(const DnsTestServer&) = delete;
  DnsTestServer& operator=(const DnsTestServer&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string address() const;

  // `addresses` are numeric IPv4 or IPv6 literals (no brackets); answers
  // list them in the given order, per family. INVALID_ARGUMENT for a
  // non-numeric address (nothing is changed then).
  absl::Status SetRecords(absl::string_view name,
                          const std::vector<std::string>& addresses,
                          int ttl_seconds = 60);
  void Remove(absl::string_view name);
  void SetServfail(absl::string_view name);
  void SetNoAnswer(absl::string_view name);

  // Questions received for `name` (any type) so far.
  int QueryCount(absl::string_view name) const;
  // Waits until QueryCount(name) >= n; false if `timeout` passes first.
  bool WaitForQueryCount(absl::string_view name, int n,
                         absl::Duration timeout) const;

 private:
  enum class Mode { kRecords, kServfail, kNoAnswer };
  struct Entry {
    Mode mode = Mode::kRecords;
    std::vector<std::string> ipv4;  // 4-byte network-order addresses
    std::vector<std::string> ipv6;  // 16-byte
    int ttl = 60;
  };

  DnsTestServer() = default;
  static void OnRequest(evdns_server_request* req, void* arg);
  void Answer(evdns_server_request* req);

  LoopThread loop_;
  int port_ = 0;
  evdns_server_port* server_port_ = nullptr;  // loop thread only

  mutable Mutex mu_;
  mutable CondVar counted_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::transport::testing

#endif  // BEVRPC_TRANSPORT_TESTING_DNS_SERVER_H_
