// FUZZ_CHECK: the assertion fuzz targets use for the properties they check
// (not just "did not crash"). On failure it prints the condition and a
// message to stderr and aborts, which libFuzzer reports as a crash (and
// keeps the input) and the replay main as a failed test. Active in every
// build mode, unlike assert().
//
//   FUZZ_CHECK(wanted > input.size(), "decoder asked for " << wanted);
//
// Also Deterministic(), for comparing messages as bytes.
#ifndef BEVRPC_TESTS_FUZZ_FUZZ_CHECK_H_
#define BEVRPC_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message.h"

namespace bevrpc::fuzzing {

// `m` serialized deterministically (map entries sorted), so that two equal
// messages compare equal as bytes.
inline std::string Deterministic(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  return out;
}

}  // namespace bevrpc::fuzzing

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
