// FUZZ_CHECK: the assertion fuzz targets use for the properties they check
// (not just "did not crash"). On failure it prints the condition and a
// message to stderr and aborts, which libFuzzer reports as a crash (and
// keeps the input) and the replay main as a failed test. Active in every
// build mode, unlike assert().
//
//   FUZZ_CHECK(wanted > input.size(), "decoder asked for " << wanted);
#ifndef BEVRPC_TESTS_FUZZ_FUZZ_CHECK_H_
#define BEVRPC_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <sstream>

#define FUZZ_CHECK(cond, msg)                                           \
  do {                                                                  \
    if (!(cond)) {                                                      \
      std::ostringstream fuzz_check_os;                                 \
      fuzz_check_os << msg;                                             \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n",        \
                   __FILE__, __LINE__, #cond,                           \
                   fuzz_check_os.str().c_str());                        \
      std::abort();                                                     \
    }                                                                   \
  } while (0)

#endif  // BEVRPC_TESTS_FUZZ_FUZZ_CHECK_H_
