#include "rpc/internal/file_stamp.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/status/status.h"

namespace bevrpc::internal {

absl::StatusOr<FileStamp> FileStamp::Of(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return absl::ErrnoToStatus(errno, path);
  FileStamp stamp;
  stamp.dev = st.st_dev;
  stamp.ino = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtime_ns =
      int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  return stamp;
}

}  // namespace bevrpc::internal
