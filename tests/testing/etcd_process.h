// EtcdProcess: a real etcd (/usr/bin/etcd, Debian's etcd-server) for tests,
// on free loopback ports with a data directory under $TEST_TMPDIR, plus tiny
// blocking helpers that talk to it over its HTTP/JSON gateway with a plain
// socket (independent of the bevrpc code under test).
//
//   auto etcd = testing::EtcdProcess::Start().value();
//   ASSERT_TRUE(etcd->Put("svc/echo/127.0.0.1:80", R"({"addr":...})").ok());
//   ... etcd->endpoint() is "127.0.0.1:PORT" ...
//   ASSERT_TRUE(etcd->Stop().ok());     // killed; data kept
//   ASSERT_TRUE(etcd->Restart().ok());  // same ports, same data
//
// The child gets SIGKILL when this process dies (PR_SET_DEATHSIG) and from
// Stop()/the destructor, so a failing or crashing test leaves no etcd
// behind. Not thread-safe: use from one test thread.
#ifndef BEVRPC_TESTS_TESTING_ETCD_PROCESS_H_
#define BEVRPC_TESTS_TESTING_ETCD_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bevrpc::testing {

class EtcdProcess {
 public:
  // Starts etcd and waits (up to `timeout`) until a range request succeeds.
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      absl::Duration timeout = absl::Seconds(30));

  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;
  ~EtcdProcess();  // kills etcd (SIGKILL) and removes nothing

  int client_port() const { return client_port_; }
  // "127.0.0.1:PORT" of the client URL.
  std::string endpoint() const;
  bool running() const { return pid_ > 0; }

  // Kills etcd (SIGKILL, like a crash) and reaps it. Data stays.
  absl::Status Stop();
  // Starts it again on the same ports with the same data directory.
  absl::Status Restart(absl::Duration timeout = absl::Seconds(30));

  // Blocking gateway calls. Each returns the store revision afterwards.
  absl::StatusOr<int64_t> Put(absl::string_view key, absl::string_view value,
                              int64_t lease = 0);
  absl::StatusOr<int64_t> Delete(absl::string_view key);
  absl::Status Compact(int64_t revision);
  absl::StatusOr<int64_t> Revision();
  // The value of `key`, nullopt if absent; `lease` (if set) gets its lease.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key,
                                                 int64_t* lease = nullptr);
  // Polls `key` (etcd tells a test nothing it could wait on) every 20 ms
  // until it is present (or absent, with `present` false) and, when
  // present, `lease_ok(its lease)` holds; false after `timeout`.
  bool WaitForKey(absl::string_view key, bool present, absl::Duration timeout,
                  absl::FunctionRef<bool(int64_t lease)> lease_ok =
                      [](int64_t) { return true; });
  // Remaining TTL of a lease in seconds; -1 when the lease is gone.
  absl::StatusOr<int64_t> LeaseTtl(int64_t lease);
  absl::Status RevokeLease(int64_t lease);

  // POSTs `json` to `path`; returns the body of a 200 answer.
  absl::StatusOr<std::string> Post(absl::string_view path,
                                   absl::string_view json);

 private:
  EtcdProcess(std::string data_dir, int client_port, int peer_port);
  absl::Status Spawn(absl::Duration timeout);

  std::string data_dir_;
  int client_port_;
  int peer_port_;
  pid_t pid_ = -1;
};

// A free TCP port on 127.0.0.1 (bound, then released; good enough in tests).
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace bevrpc::testing

#endif  // BEVRPC_TESTS_TESTING_ETCD_PROCESS_H_
