// FileStamp: what identifies one version of a file on disk (device, inode,
// size, modification time), for code that polls a file and re-reads it
// when it changed: the file:/// resolver, the bearer-token file, the TLS
// certificate files of a server.
//
//   absl::StatusOr<internal::FileStamp> now = internal::FileStamp::Of(path);
//   if (now.ok() && *now != last) { last = *now; Reload(); }
//
// A new inode (the file was replaced by a rename, as writers should do),
// size or mtime makes a different stamp. A file rewritten in place within
// the file system's timestamp granularity with the same size is not
// noticed; that is the price of not reading it on every poll.
//
// A FileStamp is a plain value: copy it, compare it, keep it where the
// caller keeps its other state. Of() only calls stat(2) and may be called
// from any thread.
#ifndef BEVRPC_RPC_INTERNAL_FILE_STAMP_H_
#define BEVRPC_RPC_INTERNAL_FILE_STAMP_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace bevrpc::internal {

struct FileStamp {
  // stat(2) of `path` (following symbolic links). On failure the status
  // has the code errno maps to (NOT_FOUND for ENOENT, PERMISSION_DENIED
  // for EACCES, ...) and the message "PATH: strerror".
  static absl::StatusOr<FileStamp> Of(const std::string& path);

  // A default stamp equals no stamp Of() returns: use it for "never seen".
  dev_t dev = 0;
  ino_t ino = 0;
  int64_t size = -1;
  int64_t mtime_ns = -1;

  bool operator==(const FileStamp& o) const {
    return dev == o.dev && ino == o.ino && size == o.size &&
           mtime_ns == o.mtime_ns;
  }
  bool operator!=(const FileStamp& o) const { return !(*this == o); }
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_FILE_STAMP_H_
