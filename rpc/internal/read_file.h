// ReadFileToString: the whole contents of a file, or why not.
//
//   absl::StatusOr<std::string> text = internal::ReadFileToString(path);
//   if (!text.ok()) return text.status();  // "PATH: No such file or ..."
//
// For the small files bevrpc reads whole (token and rule lists, limits,
// endpoints, service configs, topologies); there is no size limit, so do
// not point it at something unbounded. Unlike `out << ifstream.rdbuf()`,
// a file that opens but cannot be read (a directory, an I/O error) is an
// error, not an empty or truncated string.
//
// Blocks on the file system: not for an event loop thread. Otherwise any
// thread may call; nothing is shared between calls.
#ifndef BEVRPC_RPC_INTERNAL_READ_FILE_H_
#define BEVRPC_RPC_INTERNAL_READ_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace bevrpc::internal {

// The bytes of the file at `path`, unchanged. On failure the status has
// the code errno maps to (NOT_FOUND for ENOENT, PERMISSION_DENIED for
// EACCES, ...) and the message "PATH: strerror".
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_READ_FILE_H_
