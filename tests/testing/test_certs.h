// Test certificates made with the OpenSSL API (no openssl binary needed):
// a CA, server certificates for localhost and 127.0.0.1, a client
// certificate CN=client-a, an expired server certificate and one from a CA
// nobody trusts, written as PEM files into a directory (a test's temp dir).
//
//   absl::StatusOr<TestCerts> certs = WriteTestCerts(::testing::TempDir());
//   server.tls.cert_file = certs->server_cert;
//
// Keys are EC P-256 (fast to make). Every certificate is valid from an hour
// ago for ten years, except expired_cert (ended yesterday).
// Threading: WriteTestCerts() is thread-safe (distinct directories).
#ifndef BEVRPC_TESTS_TESTING_TEST_CERTS_H_
#define BEVRPC_TESTS_TESTING_TEST_CERTS_H_

#include <string>

#include "absl/status/statusor.h"

namespace bevrpc::testing {

struct TestCerts {
  std::string dir;
  // CN=bevrpc test CA: what clients (ca_file) and servers (client_ca_file)
  // trust.
  std::string ca_cert;
  // CN=localhost, SANs DNS:localhost, IP:127.0.0.1, IP:::1 (from ca_cert).
  std::string server_cert, server_key;
  // The same names with subject CN=localhost,O=second (reload tests).
  std::string server2_cert, server2_key;
  // CN=client-a, SAN URI:spiffe://bevrpc.test/client-a, for mutual TLS.
  std::string client_cert, client_key;
  // Like server_cert, but expired yesterday.
  std::string expired_cert, expired_key;
  // Like server_cert, but issued by another CA (untrusted_ca_cert).
  std::string untrusted_ca_cert, untrusted_cert, untrusted_key;
};

// Makes the keys and certificates and writes them into `dir` (which must
// exist), overwriting files of the same names.
absl::StatusOr<TestCerts> WriteTestCerts(const std::string& dir);

}  // namespace bevrpc::testing

#endif  // BEVRPC_TESTS_TESTING_TEST_CERTS_H_
