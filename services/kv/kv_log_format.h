// The on-disk format of the kv service's append-only log (kv_server
// --data_dir): wire constants only. Reading and writing: kv_log.h.
//
// A log file is a sequence of records, nothing else (no file header), so an
// empty file is an empty store. Each record is a 28-byte header followed by
// the key and the value; integers are little-endian:
//
//   offset size  field
//   0      4     header_crc   masked CRC32C of bytes [4, 28) of this header
//                             (so it covers body_crc and both lengths)
//   4      4     body_crc     masked CRC32C of key followed by value
//   8      1     type         RecordType below
//   9      1     format       kFormatVersion
//   10     2     reserved     0
//   12     4     key_length   at most the reader's max_key_bytes
//   16     4     value_length at most the reader's max_value_bytes
//   20     8     version      the entry's version (kPut), the version the
//                             deleted entry had (kDelete), or the store's
//                             last_version (kLastVersion)
//   28     ...   key (key_length bytes), then value (value_length bytes)
//
// Masking (LevelDB's crc32c::Mask) keeps a CRC of data that itself holds
// CRCs from being trivially zero. The header has its own checksum so that a
// reader trusts the lengths before it allocates or skips by them: a flipped
// length bit is reported as corruption, not mistaken for a torn tail.
//
// Replay applies records in order: kPut sets key = value at version,
// kDelete removes key (absent: nothing), kLastVersion raises the store's
// last_version (versions are never reused, even those of deleted keys).
// A compacted log starts with one kLastVersion record, then one kPut per
// live entry, then whatever was written while it was being built.
#ifndef BEVRPC_SERVICES_KV_KV_LOG_FORMAT_H_
#define BEVRPC_SERVICES_KV_KV_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace bevrpc::kv::log_format {

enum class RecordType : uint8_t {
  kPut = 1,
  kDelete = 2,
  kLastVersion = 3,
};

inline constexpr uint8_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 28;

inline constexpr size_t kHeaderCrcOffset = 0;
inline constexpr size_t kBodyCrcOffset = 4;
inline constexpr size_t kTypeOffset = 8;
inline constexpr size_t kFormatOffset = 9;
inline constexpr size_t kReservedOffset = 10;
inline constexpr size_t kKeyLengthOffset = 12;
inline constexpr size_t kValueLengthOffset = 16;
inline constexpr size_t kVersionOffset = 20;

// Files in a data directory.
inline constexpr char kLogFileName[] = "kv.log";
// A compaction in progress; a leftover one at start is an unfinished
// compaction (kv.log is still complete) and is removed.
inline constexpr char kCompactFileName[] = "kv.log.compact";
// flock()ed while a process uses the directory.
inline constexpr char kLockFileName[] = "LOCK";

inline constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;

}  // namespace bevrpc::kv::log_format

#endif  // BEVRPC_SERVICES_KV_KV_LOG_FORMAT_H_
