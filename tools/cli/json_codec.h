// JSON in and out for the CLI: protobuf's JSON mapping, with error messages
// that point at the offending field.
//
//   absl::Status s = ParseJsonRequest(R"({"mesage":"hi"})", &request);
//   // INVALID_ARGUMENT: unknown field "mesage" in bevrpc.echo.EchoRequest,
//   //                   did you mean "message"?
//   absl::StatusOr<std::string> out = FormatMessage(response, OutputFormat::kJson, false);
//
// Thread-compatible.
#ifndef BEVRPC_TOOLS_CLI_JSON_CODEC_H_
#define BEVRPC_TOOLS_CLI_JSON_CODEC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace bevrpc::cli {

enum class OutputFormat { kJson, kText, kBinary };

// Parses `text` as `format`; bad input is reported with its field.
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text);

// Fills `message` from JSON. Unknown fields are errors naming the field, its
// message type and the closest known field name.
absl::Status ParseJsonRequest(absl::string_view json,
                              google::protobuf::Message* message);

// JSON (one line, proto field names), text format, or raw bytes.
absl::StatusOr<std::string> FormatMessage(const google::protobuf::Message& m,
                                          OutputFormat format,
                                          bool emit_defaults);

// The name in `candidates` closest to `name` by edit distance, or "" if
// none is close enough to be a plausible typo.
std::string ClosestName(absl::string_view name,
                        const std::vector<std::string>& candidates);

}  // namespace bevrpc::cli

#endif  // BEVRPC_TOOLS_CLI_JSON_CODEC_H_
