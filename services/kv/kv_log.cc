#include "services/kv/kv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc::kv {
namespace {

using log_format::RecordType;

constexpr uint32_t kCastagnoli = 0x82f63b78u;  // reversed polynomial

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCastagnoli : c >> 1;
    t[i] = c;
  }
  return t;
}

uint32_t Crc32cPortable(const unsigned char* p, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  while (n-- > 0) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(
    const unsigned char* p, size_t n, uint32_t crc) {
  uint64_t c = crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
#endif

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string ErrnoText(int err) { return strerror(err); }

absl::Status ErrnoStatus(int err, absl::string_view what) {
  std::string text = absl::StrCat(what, ": ", ErrnoText(err));
  return err == ENOENT ? absl::NotFoundError(text)
                       : absl::UnavailableError(text);
}

// Reads a file at any offset through a window, so that replay costs one
// read(2) per MiB rather than per record.
class WindowReader {
 public:
  WindowReader(int fd, uint64_t file_size) : fd_(fd), file_size_(file_size) {}

  // Points `*out` at `n` bytes at `offset`; false if the file is shorter.
  // Valid until the next call.
  absl::StatusOr<bool> Read(uint64_t offset, size_t n, absl::string_view* out) {
    if (offset > file_size_ || n > file_size_ - offset) return false;
    if (offset < start_ || offset + n > start_ + buf_.size()) {
      absl::Status s = Fill(offset, n);
      if (!s.ok()) return s;
    }
    *out = absl::string_view(buf_.data() + (offset - start_), n);
    return true;
  }

 private:
  absl::Status Fill(uint64_t offset, size_t n) {
    size_t want = std::max<size_t>(n, kWindow);
    want = static_cast<size_t>(std::min<uint64_t>(want, file_size_ - offset));
    buf_.resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t r = pread(fd_, buf_.data() + got, want - got, offset + got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoStatus(errno, "read");
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    buf_.resize(got);
    start_ = offset;
    if (got < n) return absl::DataLossError("file shrank while being read");
    return absl::OkStatus();
  }

  static constexpr size_t kWindow = 1 << 20;
  int fd_;
  uint64_t file_size_;
  uint64_t start_ = 0;
  std::string buf_;
};

// What one offset of a log holds.
enum class Verdict { kGood, kBad, kUnacceptable };

struct Parsed {
  Verdict verdict = Verdict::kBad;
  LogRecord record{};
  uint64_t size = 0;
  std::string why;  // for kBad and kUnacceptable
};

// Checks the header at `offset` and, if it is sound, the body.
absl::StatusOr<Parsed> ParseAt(WindowReader& reader, uint64_t offset,
                               const ReadLimits& limits) {
  using namespace log_format;  // NOLINT: the offsets read better bare.
  Parsed p;
  absl::string_view h;
  absl::StatusOr<bool> got = reader.Read(offset, kHeaderSize, &h);
  if (!got.ok()) return got.status();
  if (!*got) {
    p.why = "a header cut short by the end of the file";
    return p;
  }
  uint32_t header_crc = Crc32c(h.substr(kBodyCrcOffset));
  if (UnmaskCrc(GetU32(h.data() + kHeaderCrcOffset)) != header_crc) {
    p.why = "a header checksum mismatch";
    return p;
  }
  // The header is what was written: anything odd in it is a mismatch of
  // versions or limits, not damage.
  const uint8_t type = static_cast<uint8_t>(h[kTypeOffset]);
  const uint8_t format = static_cast<uint8_t>(h[kFormatOffset]);
  const uint32_t key_len = GetU32(h.data() + kKeyLengthOffset);
  const uint32_t value_len = GetU32(h.data() + kValueLengthOffset);
  p.verdict = Verdict::kUnacceptable;
  if (format != kFormatVersion) {
    p.why = absl::StrCat("format version ", format, " (this reader knows ",
                         kFormatVersion, ")");
    return p;
  }
  if (type < static_cast<uint8_t>(RecordType::kPut) ||
      type > static_cast<uint8_t>(RecordType::kLastVersion)) {
    p.why = absl::StrCat("unknown record type ", type);
    return p;
  }
  if (key_len > limits.max_key_bytes) {
    p.why = absl::StrCat("key_length ", key_len, " exceeds max_key_bytes ",
                         limits.max_key_bytes);
    return p;
  }
  if (value_len > limits.max_value_bytes) {
    p.why = absl::StrCat("value_length ", value_len,
                         " exceeds max_value_bytes ", limits.max_value_bytes);
    return p;
  }
  const uint64_t version = GetU64(h.data() + kVersionOffset);
  const uint32_t body_crc = UnmaskCrc(GetU32(h.data() + kBodyCrcOffset));
  p.verdict = Verdict::kBad;
  absl::string_view body;
  got = reader.Read(offset + kHeaderSize, size_t{key_len} + value_len, &body);
  if (!got.ok()) return got.status();
  if (!*got) {
    p.why = "a record cut short by the end of the file";
    return p;
  }
  if (Crc32c(body) != body_crc) {
    p.why = "a body checksum mismatch";
    return p;
  }
  p.verdict = Verdict::kGood;
  p.record = LogRecord{static_cast<RecordType>(type), version,
                       body.substr(0, key_len), body.substr(key_len)};
  p.size = kHeaderSize + body.size();
  return p;
}

// True if a good record starts anywhere in (offset, file_size).
absl::StatusOr<bool> GoodRecordAfter(WindowReader& reader, uint64_t offset,
                                     uint64_t file_size,
                                     const ReadLimits& limits,
                                     uint64_t* found) {
  for (uint64_t at = offset + 1; at + log_format::kHeaderSize <= file_size;
       ++at) {
    absl::StatusOr<Parsed> p = ParseAt(reader, at, limits);
    if (!p.ok()) return p.status();
    if (p->verdict == Verdict::kGood) {
      *found = at;
      return true;
    }
  }
  return false;
}

}  // namespace

uint32_t Crc32c(absl::string_view data, uint32_t crc) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  crc = ~crc;
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  crc = hardware ? Crc32cHardware(p, data.size(), crc)
                 : Crc32cPortable(p, data.size(), crc);
#else
  crc = Crc32cPortable(p, data.size(), crc);
#endif
  return ~crc;
}

uint32_t MaskCrc(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + log_format::kCrcMaskDelta;
}

uint32_t UnmaskCrc(uint32_t masked) {
  uint32_t rot = masked - log_format::kCrcMaskDelta;
  return (rot >> 17) | (rot << 15);
}

void AppendRecord(RecordType type, uint64_t version, absl::string_view key,
                  absl::string_view value, std::string* out) {
  using namespace log_format;  // NOLINT
  const size_t start = out->size();
  out->resize(start + kHeaderSize);
  out->append(key.data(), key.size());
  out->append(value.data(), value.size());
  char* h = out->data() + start;
  uint32_t body_crc = Crc32c(value, Crc32c(key));
  PutU32(h + kBodyCrcOffset, MaskCrc(body_crc));
  h[kTypeOffset] = static_cast<char>(type);
  h[kFormatOffset] = static_cast<char>(kFormatVersion);
  h[kReservedOffset] = 0;
  h[kReservedOffset + 1] = 0;
  PutU32(h + kKeyLengthOffset, static_cast<uint32_t>(key.size()));
  PutU32(h + kValueLengthOffset, static_cast<uint32_t>(value.size()));
  PutU64(h + kVersionOffset, version);
  uint32_t header_crc =
      Crc32c(absl::string_view(h + kBodyCrcOffset, kHeaderSize - 4));
  PutU32(h + kHeaderCrcOffset, MaskCrc(header_crc));
}

absl::StatusOr<ReplayResult> ReplayLogFile(
    const std::string& path, const ReadLimits& limits, bool repair,
    absl::FunctionRef<void(const LogRecord&)> apply) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return ReplayResult{};
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("stat ", path));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  WindowReader reader(fd, file_size);
  ReplayResult result;
  uint64_t offset = 0;
  absl::Status status;
  while (offset < file_size) {
    absl::StatusOr<Parsed> p = ParseAt(reader, offset, limits);
    if (!p.ok()) {
      status = absl::Status(p.status().code(),
                            absl::StrCat(path, ": offset ", offset, ": ",
                                         p.status().message()));
      break;
    }
    if (p->verdict == Verdict::kUnacceptable) {
      status = absl::FailedPreconditionError(
          absl::StrCat(path, ": record at offset ", offset, ": ", p->why));
      break;
    }
    if (p->verdict == Verdict::kBad) {
      uint64_t next = 0;
      absl::StatusOr<bool> more = false;
      if (!repair) {
        more = GoodRecordAfter(reader, offset, file_size, limits, &next);
      }
      if (!more.ok()) {
        status = more.status();
      } else if (*more) {
        status = absl::DataLossError(absl::StrCat(
            path, ": corrupt record at offset ", offset, " (", p->why,
            ") followed by a good record at offset ", next, "; ",
            file_size - offset,
            " bytes from there on would be lost. Not starting: restore "
            "the directory from a copy, or accept the loss with "
            "--data_repair (kv_server) / PersistOptions::repair"));
      } else {
        result.dropped_bytes = file_size - offset;
      }
      break;
    }
    apply(p->record);
    ++result.records;
    offset += p->size;
  }
  close(fd);
  if (!status.ok()) return status;
  result.valid_bytes = offset;
  return result;
}

absl::StatusOr<std::unique_ptr<LogFile>> LogFile::Open(const std::string& path,
                                                      int64_t truncate_to) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  if (truncate_to >= 0 && ftruncate(fd, truncate_to) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("truncate ", path));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("stat ", path));
  }
  return std::unique_ptr<LogFile>(
      new LogFile(path, fd, static_cast<uint64_t>(st.st_size)));
}

LogFile::~LogFile() { close(fd_); }

absl::Status LogFile::Append(absl::string_view data) {
  if (!broken_.ok()) return broken_;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      absl::Status s = ErrnoStatus(
          err, absl::StrCat("write ", data.size(), " bytes to ", path_,
                            " at offset ", size_));
      // Cut off the partial write so that the file ends at a record.
      if (done > 0 && ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        broken_ = absl::UnavailableError(absl::StrCat(
            s.message(), "; and cutting off the partial write failed: ",
            ErrnoText(errno)));
        return broken_;
      }
      return s;
    }
    done += static_cast<size_t>(n);
  }
  size_ += data.size();
  return absl::OkStatus();
}

absl::Status LogFile::Sync() {
  if (!broken_.ok()) return broken_;
  if (fdatasync(fd_) != 0) {
    broken_ = ErrnoStatus(errno, absl::StrCat("fdatasync ", path_));
  }
  return broken_;
}

absl::Status LogFile::RenameTo(const std::string& new_path) {
  if (rename(path_.c_str(), new_path.c_str()) != 0) {
    return ErrnoStatus(errno,
                       absl::StrCat("rename ", path_, " to ", new_path));
  }
  path_ = new_path;
  return absl::OkStatus();
}

absl::Status LogFile::ReadAt(uint64_t offset, size_t n,
                             std::string* out) const {
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path_));
  out->resize(n);
  size_t got = 0;
  absl::Status s;
  while (got < n) {
    ssize_t r = pread(fd, out->data() + got, n - got, offset + got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      s = r < 0 ? ErrnoStatus(errno, absl::StrCat("read ", path_))
                : absl::DataLossError(absl::StrCat(path_, " is shorter than ",
                                                   offset + n, " bytes"));
      break;
    }
    got += static_cast<size_t>(r);
  }
  close(fd);
  return s;
}

absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.empty() ? "." : dir.c_str(),
                O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", dir));
  absl::Status s;
  if (fsync(fd) != 0) s = ErrnoStatus(errno, absl::StrCat("fsync ", dir));
  close(fd);
  return s;
}

absl::StatusOr<std::unique_ptr<DirLock>> DirLock::Acquire(
    const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("create data directory ", dir, ": ", ec.message()));
  }
  std::string path = absl::StrCat(dir, "/", log_format::kLockFileName);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory ", dir, " is in use by another process (", path,
          " is locked); each kv_server needs its own --data_dir"));
    }
    return ErrnoStatus(err, absl::StrCat("flock ", path));
  }
  return std::unique_ptr<DirLock>(new DirLock(fd));
}

DirLock::~DirLock() { close(fd_); }

}  // namespace bevrpc::kv
