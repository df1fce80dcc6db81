// The slow-reader check, shared by tests/e2e/slow_reader_test.cc
// (plaintext) and tests/e2e/tls/tls_slow_reader_test.cc (TLS): a client
// that stops reading while the server streams to it. The server's memory
// stays bounded (its handler is held back by the stream's credit), a
// client on another connection is served meanwhile, and the stream resumes
// and completes once the client reads again.
//
//   TEST(SlowReaderTest, ServerMemoryStaysBoundedAndTheStreamResumes) {
//     testing::SlowReaderSetup setup;  // Plaintext on 127.0.0.1.
//     testing::RunSlowReaderCheck(setup);
//   }
//
// The server is the real echo_server binary (a child process; the library
// brings it into the test's runfiles), so its RSS is measured alone:
// baseline after start-up, then VmHWM (the peak) at the end. The bound
// comes from the options: what the client's window lets the server send
// unread, the server's per-call write buffer and a message in hand, plus
// allocator slack; the stream (128 MiB) is several times larger, so a
// server that buffered it would be far over. Sanitizer builds only report
// the figures: their allocators quarantine freed memory, so RSS there says
// nothing about what is live.
//
// Threading: call from the test's thread only, one check at a time (each
// starts its own server).
#ifndef BEVRPC_TESTS_TESTING_SLOW_READER_H_
#define BEVRPC_TESTS_TESTING_SLOW_READER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rpc/channel.h"

namespace bevrpc::testing {

struct SlowReaderSetup {
  // echo_server flags besides --port=0 (e.g. --tls_cert, --tls_key).
  // Default: none.
  std::vector<std::string> server_flags;
  // The host the channels dial, with echo_server's port; "localhost" for a
  // certificate issued to that name. Default: "127.0.0.1".
  std::string host = "127.0.0.1";
  // Options of both channels (e.g. tls.ca_file). Default: ChannelOptions().
  ChannelOptions channel_options;
  // RSS growth allowed on top of the plaintext bound (TLS record buffers).
  // Default: 0.
  int64_t extra_slack_kib = 0;
};

// Runs the whole check, reporting through gtest assertions: call it from a
// TEST body. A fatal failure ends the check early (and stops the server).
void RunSlowReaderCheck(const SlowReaderSetup& setup);

// A "VmRSS:" style field of /proc/PID/status, in KiB; -1 if absent.
int64_t ProcStatusKiB(pid_t pid, const std::string& field);

// True under AddressSanitizer or ThreadSanitizer (their test environment,
// set by .bazelrc's --config=asan / --config=tsan).
bool SanitizerBuild();

}  // namespace bevrpc::testing

#endif  // BEVRPC_TESTS_TESTING_SLOW_READER_H_
