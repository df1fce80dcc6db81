// Fuzz target: the CLI's JSON-to-message path, bevrpc::cli::ParseJsonRequest,
// on bevrpc.fuzz.Everything (json_fuzz.proto: nested, repeated, map, bytes,
// enum, oneof and well-known-type fields).
//
// Checked: a rejected input is INVALID_ARGUMENT with a message; an
// accepted one prints (FormatMessage, JSON, text and binary), and the JSON
// printed parses back to the same message.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/json_fuzz.pb.h"
#include "tools/cli/json_codec.h"

namespace bevrpc {
namespace {

void Check(absl::string_view json) {
  fuzz::Everything message;
  absl::Status s = cli::ParseJsonRequest(json, &message);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument &&
                   !s.message().empty(),
               "rejected with " << s);
    return;
  }
  for (cli::OutputFormat format :
       {cli::OutputFormat::kText, cli::OutputFormat::kBinary}) {
    absl::StatusOr<std::string> out =
        cli::FormatMessage(message, format, /*emit_defaults=*/false);
    FUZZ_CHECK(out.ok(), out.status());
  }
  for (bool emit_defaults : {false, true}) {
    absl::StatusOr<std::string> printed =
        cli::FormatMessage(message, cli::OutputFormat::kJson, emit_defaults);
    FUZZ_CHECK(printed.ok(), "accepted but cannot print: " << printed.status());
    fuzz::Everything again;
    s = cli::ParseJsonRequest(*printed, &again);
    FUZZ_CHECK(s.ok(), "printed JSON does not parse back: " << s << "\n"
                                                            << *printed);
    FUZZ_CHECK(fuzzing::Deterministic(again) == fuzzing::Deterministic(message),
               "printed JSON parses to another message: " << *printed);
  }
}

}  // namespace
}  // namespace bevrpc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  bevrpc::Check(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
