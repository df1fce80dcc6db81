// make_test_certs DIR: writes tests/testing/test_certs.h's certificates
// into DIR (ca.pem, server.pem/.key, client.pem/.key, ...) for shell tests.
#include <cstdio>

#include "tests/testing/test_certs.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_test_certs DIR\n");
    return 2;
  }
  absl::StatusOr<bevrpc::testing::TestCerts> certs =
      bevrpc::testing::WriteTestCerts(argv[1]);
  if (!certs.ok()) {
    std::fprintf(stderr, "make_test_certs: %s\n",
                 certs.status().ToString().c_str());
    return 1;
  }
  return 0;
}
