// ReplicaLog: one replica's output kept under the state dir
// (STATE_DIR/logs/SERVICE.REPLICA.log), bounded: when the file would grow
// past max_bytes it is renamed to PATH.1 (replacing the previous one) and
// a new file started, so a replica uses at most about 2 x max_bytes.
//
//   ReplicaLog log("/state/logs/kv.0.log", 10 << 20);
//   log.Append("listening on 127.0.0.1:4001");   // adds the newline
//
// Write errors are ignored after the first, which is reported on stderr
// (a full disk must not stop the launcher). Not thread-safe: one writer
// (the output pump's thread).
#ifndef BEVRPC_TOOLS_LAUNCH_REPLICA_LOG_H_
#define BEVRPC_TOOLS_LAUNCH_REPLICA_LOG_H_

#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"

namespace bevrpc::launch {

class ReplicaLog {
 public:
  ReplicaLog(std::string path, size_t max_bytes);
  ~ReplicaLog();
  ReplicaLog(const ReplicaLog&) = delete;
  ReplicaLog& operator=(const ReplicaLog&) = delete;

  void Append(absl::string_view line);

  // Bytes in the current file.
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void Open(const char* mode);
  void Rotate();

  const std::string path_;
  const size_t max_bytes_;
  FILE* file_ = nullptr;
  size_t size_ = 0;
  bool reported_ = false;
};

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_REPLICA_LOG_H_
