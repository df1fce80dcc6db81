// The kv service's append-only log at the file level: encoding records,
// replaying a log file, appending with fdatasync, and the data directory's
// lock. No threads and no in-memory store here: KeyValueService
// (kv_service.h) drives these. The format: kv_log_format.h.
//
//   absl::StatusOr<std::unique_ptr<DirLock>> lock = DirLock::Acquire(dir);
//   absl::StatusOr<ReplayResult> r = ReplayLogFile(path, limits, false,
//       [&](const LogRecord& rec) { ...apply... });
//   // r->dropped_bytes > 0: a torn tail; truncate the file to r->valid_bytes.
//   absl::StatusOr<std::unique_ptr<LogFile>> log =
//       LogFile::Open(path, /*truncate_to=*/r->valid_bytes);
//   std::string batch;
//   AppendRecord(RecordType::kPut, version, key, value, &batch);
//   absl::Status s = (*log)->Append(batch);   // write(2); then
//   s = (*log)->Sync();                       // fdatasync(2)
//
// Ownership: a LogFile and a DirLock own their descriptors. Thread rules:
// the free functions are thread-safe; a LogFile or DirLock is used by one
// thread at a time.
#ifndef BEVRPC_SERVICES_KV_KV_LOG_H_
#define BEVRPC_SERVICES_KV_KV_LOG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/kv/kv_log_format.h"

namespace bevrpc::kv {

// CRC32C (Castagnoli) of `data`, continuing from `crc` (0 to start). Uses
// the SSE4.2 instruction when the CPU has it.
uint32_t Crc32c(absl::string_view data, uint32_t crc = 0);
uint32_t MaskCrc(uint32_t crc);
uint32_t UnmaskCrc(uint32_t masked);

// Bytes one record of this key and value takes in the log.
inline size_t RecordSize(size_t key_bytes, size_t value_bytes) {
  return log_format::kHeaderSize + key_bytes + value_bytes;
}

// Appends one encoded record to `out`.
void AppendRecord(log_format::RecordType type, uint64_t version,
                  absl::string_view key, absl::string_view value,
                  std::string* out);

// A record read back; key and value point into the reader's buffer and are
// valid only during the callback.
struct LogRecord {
  log_format::RecordType type;
  uint64_t version;
  absl::string_view key;
  absl::string_view value;
};

struct ReadLimits {
  // Records with a longer key are an error (checked before allocating).
  // Default: 1024, as KeyValueLimits.
  size_t max_key_bytes = 1024;
  // Records with a larger value are an error. Default: 1 MiB.
  size_t max_value_bytes = 1024 * 1024;
};

struct ReplayResult {
  // Records applied.
  uint64_t records = 0;
  // Length of the good prefix: where the next record goes.
  uint64_t valid_bytes = 0;
  // Bytes after valid_bytes that are not a record: a torn write at the
  // end (no good record follows them). The caller truncates them.
  uint64_t dropped_bytes = 0;
};

// Reads `path` from the start and calls `apply` for every record in order.
// A missing file is an empty log. A bad record (short, checksum mismatch)
// followed by nothing but more bad bytes is a torn tail: reported in
// dropped_bytes. A bad record with a good one after it is corruption in the
// middle: DATA_LOSS naming the file and the offset, unless `repair`, which
// treats everything from the first bad record on as the tail (and loses
// what follows it). A good record the reader cannot accept (unknown type or
// format, a length over `limits`) is an error naming the file, the offset
// and the limit, whatever `repair` says: it is not damage but a mismatch of
// versions or limits. Lengths are checked before anything is allocated.
absl::StatusOr<ReplayResult> ReplayLogFile(
    const std::string& path, const ReadLimits& limits, bool repair,
    absl::FunctionRef<void(const LogRecord&)> apply);

// An open log file, appended to with write(2). Not thread-safe.
class LogFile {
 public:
  // Opens (creating it if missing) `path` for appending. If
  // `truncate_to` is set, the file is first cut to that length (a torn
  // tail, or 0 for a new compaction file).
  static absl::StatusOr<std::unique_ptr<LogFile>> Open(
      const std::string& path, int64_t truncate_to = -1);
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Writes all of `data` at the end. On an error (ENOSPC, EIO, EFBIG...)
  // the file is cut back to its size before the call, so it still ends
  // at a record boundary; if even that fails, the file is broken() and
  // every later call fails.
  absl::Status Append(absl::string_view data);
  // fdatasync(2). A failure breaks the file: after a failed fsync the
  // kernel may have dropped the dirty pages, so retrying proves nothing.
  absl::Status Sync();
  // Renames the file to `new_path` (in the same directory). Durable only
  // once the directory is synced (SyncDir).
  absl::Status RenameTo(const std::string& new_path);
  // Reads `n` bytes at `offset` (for copying a log's tail).
  absl::Status ReadAt(uint64_t offset, size_t n, std::string* out) const;

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Non-OK once the file may not end at a record boundary or a sync failed.
  const absl::Status& broken() const { return broken_; }

 private:
  LogFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  std::string path_;
  int fd_;
  uint64_t size_;
  absl::Status broken_;
};

// fsync(2) of a directory, so that a rename or a create in it is durable.
absl::Status SyncDir(const std::string& dir);

// An exclusive flock(2) on DIR/LOCK, held while this object lives, so that
// two processes (or two stores in one process) never share a data
// directory.
class DirLock {
 public:
  // Creates `dir` (and its parents) if missing. FAILED_PRECONDITION naming
  // the directory if another holder has it.
  static absl::StatusOr<std::unique_ptr<DirLock>> Acquire(
      const std::string& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace bevrpc::kv

#endif  // BEVRPC_SERVICES_KV_KV_LOG_H_
