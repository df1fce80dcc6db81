// The slow-reader test (tests/e2e/slow_reader_test.cc) over TLS: the
// server's TLS connections still apply backpressure (libevent's OpenSSL
// bufferevent honours the read watermark, overshooting by at most a TLS
// record), so a client that stops reading while the server streams to it
// keeps the server's memory bounded. The check, its bound and why are in
// tests/testing/slow_reader.h.
#include <sys/stat.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/slow_reader.h"
#include "tests/testing/test_certs.h"

namespace bevrpc {
namespace {

// TLS buffers (OpenSSL's record buffers, one record of read-ahead past the
// watermark) on top of the plaintext test's slack.
constexpr int64_t kTlsSlackKiB = 1024;

TEST(TlsSlowReaderTest, ServerMemoryStaysBoundedAndTheStreamResumes) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/tls_slow_reader");
  mkdir(dir.c_str(), 0700);
  absl::StatusOr<testing::TestCerts> certs = testing::WriteTestCerts(dir);
  ASSERT_TRUE(certs.ok()) << certs.status();
  testing::SlowReaderSetup setup;
  setup.server_flags = {absl::StrCat("--tls_cert=", certs->server_cert),
                        absl::StrCat("--tls_key=", certs->server_key)};
  setup.host = "localhost";
  setup.channel_options.tls.ca_file = certs->ca_cert;
  setup.extra_slack_kib = kTlsSlackKiB;
  testing::RunSlowReaderCheck(setup);
}

}  // namespace
}  // namespace bevrpc
