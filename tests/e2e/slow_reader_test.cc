// A client that stops reading while the server streams to it, in
// plaintext: the server's memory stays bounded, a client on another
// connection is served meanwhile, and the stream resumes and completes
// once the client reads again. The check, its bound and why are in
// tests/testing/slow_reader.h (shared with tests/e2e/tls/).
#include "gtest/gtest.h"
#include "tests/testing/slow_reader.h"

namespace bevrpc {
namespace {

TEST(SlowReaderTest, ServerMemoryStaysBoundedAndTheStreamResumes) {
  testing::RunSlowReaderCheck(testing::SlowReaderSetup());
}

}  // namespace
}  // namespace bevrpc
