// KeyValueService: bevrpc.kv.KeyValue, in memory or persisted to an
// append-only log in a data directory.
//
//   bevrpc::kv::KeyValueService kv;     // in memory; must outlive the server
//   server.RegisterService(&kv);
//
//   bevrpc::kv::PersistOptions persist;
//   persist.data_dir = "/var/lib/kv";   // fsync = kAlways by default
//   absl::StatusOr<std::unique_ptr<bevrpc::kv::KeyValueService>> kv =
//       bevrpc::kv::KeyValueService::Open({}, std::move(persist));
//   // Replayed and ready: register it, then start the server.
//
// In memory: Get, Put and Delete take one short lock and run inline on the
// I/O loop (callback flavour); List copies up to a page under the lock and
// runs on the worker pool (sync flavour).
//
// Persisted (Open): the directory holds kv.log (format: kv_log_format.h),
// replayed by Open() before it returns, and LOCK, flock()ed for the
// service's lifetime so a second process fails with a message naming the
// directory. Put and Delete are checked (keys, compare-and-set) inline and
// queued; one writer thread appends every queued record with one write(2),
// then (kAlways) one fdatasync(2) for all of them (group commit), applies
// them to the map and finishes their calls from its thread. The I/O loop
// never waits for the disk. So:
// - A write becomes visible to Get and List only once it is in the log as
//   far as the fsync policy promises (written, and under kAlways synced),
//   just before its call succeeds: a reader never sees a write that could
//   still vanish in a crash the policy covers, nor one that then fails.
//   Compare-and-set checks see queued writes, so two writes racing on one
//   version cannot both pass.
// - Versions survive restarts: the log holds every entry's version and a
//   compacted log starts with the last version handed out, so a version is
//   never reused (a write that failed may leave a gap).
// - What each FsyncPolicy survives: see the enum.
// - Bound: records queued or being written may take at most
//   PersistOptions::max_queued_bytes; a Put or Delete beyond that fails at
//   once with RESOURCE_EXHAUSTED (the I/O loop must not wait, and the
//   client can back off; one record is let through when nothing is queued).
// - A failed write(2) (ENOSPC, EIO, EFBIG) is cut off the log, and that
//   call and every call queued behind it fail with UNAVAILABLE (they were
//   checked against it), nothing of them applied; later writes try again,
//   so a full disk that is cleared recovers by itself. UNAVAILABLE, not
//   INTERNAL: the service is sound, the environment refused, and a retry
//   (by the client, elsewhere or later) is right. A failed fdatasync, or a
//   failed cut, is sticky: the kernel may have dropped the pages, so every
//   later Put and Delete fails with UNAVAILABLE until a restart replays
//   what is really on disk; reads keep working.
// - Compaction: when the log exceeds compaction_min_bytes and
//   compaction_ratio x the live data, the writer thread writes the live
//   entries to kv.log.compact a chunk at a time (taking the lock one chunk
//   at a time, so reads wait at most for one chunk), interleaved with
//   normal writes; then copies what the old log received meanwhile,
//   fdatasyncs, renames it over kv.log and fsyncs the directory. A crash
//   at any step leaves either the old complete kv.log (a leftover
//   kv.log.compact is removed at start) or the new one.
//
// Thread-safe. The destructor writes what is queued, syncs and stops the
// writer; finish with the server first (Server::Shutdown), since calls in
// the queue are finished from the writer thread.
#ifndef BEVRPC_SERVICES_KV_KV_SERVICE_H_
#define BEVRPC_SERVICES_KV_KV_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/kv/kv.bevrpc.h"
#include "services/kv/kv_log.h"
#include "transport/sync.h"

namespace bevrpc::kv {

struct KeyValueLimits {
  // Longest key accepted. Default: 1024.
  size_t max_key_bytes = 1024;
  // Largest value accepted. Default: 1 MiB.
  size_t max_value_bytes = 1024 * 1024;
  // List page size when the request asks for 0. Default: 100.
  uint32_t default_page_size = 100;
  // Largest List page; bigger requests are clamped. Default: 1000.
  uint32_t max_page_size = 1000;
};

// When an acknowledged write reaches stable storage. Every policy write(2)s
// the record before the call succeeds, so a process crash (kill -9, a
// segfault, OOM kill) loses no acknowledged write under any of them: the
// kernel's page cache outlives the process. They differ on a machine crash
// or power loss:
enum class FsyncPolicy {
  // fdatasync(2) before the call succeeds (one sync covers every write
  // queued meanwhile). Survives power loss: loses nothing acknowledged.
  // etcd's behaviour; the default, because a store others treat as the
  // truth should not forget what it acknowledged.
  kAlways,
  // fdatasync(2) every PersistOptions::fsync_interval, off the call path.
  // Power loss loses at most about the last interval of acknowledged
  // writes. Redis's appendfsync everysec.
  kInterval,
  // Never syncs while running (the kernel writes back, typically within
  // 30 s); syncs on a clean stop. Power loss loses what the kernel had not
  // written back.
  kNever,
};

// "always", "interval", "never".
absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view text);
absl::string_view FsyncPolicyName(FsyncPolicy policy);

struct PersistOptions {
  // The data directory, created if missing. Required.
  std::string data_dir;
  // Default: kAlways (see FsyncPolicy).
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  // kInterval's period. Default: 1s.
  absl::Duration fsync_interval = absl::Seconds(1);
  // Bytes of records queued or being written, at most; beyond it Put and
  // Delete fail with RESOURCE_EXHAUSTED. Default: 64 MiB.
  size_t max_queued_bytes = 64 << 20;
  // Compact once the log is larger than this... Default: 64 MiB.
  uint64_t compaction_min_bytes = 64 << 20;
  // ...and more than this many times the live data. Default: 2.
  double compaction_ratio = 2.0;
  // Live data written per compaction step (one lock hold). Default: 1 MiB.
  size_t compaction_chunk_bytes = 1 << 20;
  // On corruption in the middle of the log, keep the good prefix and drop
  // the rest (reported) instead of refusing to start. Default: false.
  bool repair = false;
  // Where start-up and error messages go, one line each. Default: stderr.
  std::function<void(const std::string&)> log_message;

  // For tests only. Called on the writer thread before each batch is
  // written (e.g. to hold it back). Default: none.
  std::function<void()> testing_before_write;
  // For tests only: stop a compaction at this step as if the process died
  // there (files left as they are; every later write fails). Default: none.
  enum class CrashPoint { kNone, kBeforeSync, kBeforeRename, kBeforeDirSync };
  CrashPoint testing_compaction_crash = CrashPoint::kNone;
};

// What the log holds, for tests and monitoring.
struct LogStats {
  uint64_t log_bytes = 0;      // size of kv.log
  uint64_t live_bytes = 0;     // what a compacted log of the live data takes
  uint64_t queued_bytes = 0;   // records queued or being written
  uint64_t compactions = 0;    // finished since Open()
  uint64_t last_version = 0;   // the highest version handed out
};

class KeyValueService : public KeyValue::Service {
 public:
  // In memory.
  explicit KeyValueService(KeyValueLimits limits = {}) : limits_(limits) {}
  // Persisted in options.data_dir: locks it, replays kv.log (truncating a
  // torn tail, reported through log_message), and starts the writer.
  // Errors name the directory or file (and offset).
  static absl::StatusOr<std::unique_ptr<KeyValueService>> Open(
      KeyValueLimits limits, PersistOptions options);
  ~KeyValueService() override;

  void GetAsync(ServerContext& ctx, const GetRequest& request,
                GetResponse* response, Completion done) override;
  void PutAsync(ServerContext& ctx, const PutRequest& request,
                PutResponse* response, Completion done) override;
  void DeleteAsync(ServerContext& ctx, const DeleteRequest& request,
                   DeleteResponse* response, Completion done) override;
  absl::Status List(ServerContext& ctx, const ListRequest& request,
                    ListResponse* response) override;

  // The same operations without RPC, for tests and embedding. Put and
  // Delete block until the write is in the log (persisted); never call
  // them from an I/O loop then.
  absl::Status Get(const GetRequest& request, GetResponse* response);
  absl::Status Put(const PutRequest& request, PutResponse* response);
  absl::Status Delete(const DeleteRequest& request);

  // Persisted only: compacts now, whatever the thresholds, and waits.
  absl::Status Compact();
  LogStats log_stats() const;

 private:
  struct Value {
    std::string value;
    uint64_t version;
  };
  // A Put or Delete accepted but not yet in the log.
  struct PendingWrite {
    log_format::RecordType type;
    std::string key;
    std::string value;
    uint64_t version;
    size_t bytes;
    absl::AnyInvocable<void(absl::Status)> done;
  };
  // The newest state of a key with queued writes, for compare-and-set.
  struct Overlay {
    bool exists;
    uint64_t version;
    int pending;
  };
  using Done = absl::AnyInvocable<void(absl::Status)>;

  absl::Status CheckKey(const std::string& key) const;
  absl::Status CheckPut(const PutRequest& request) const;
  // In memory: the write itself.
  absl::Status PutInMemory(const PutRequest& request, PutResponse* response);
  absl::Status DeleteInMemory(const DeleteRequest& request);
  // Persisted: checks and queues the write. `done` runs exactly once: at
  // once (inline) if the write is refused, else on the writer thread once
  // the write is in the log and applied, or failed.
  void EnqueuePut(const PutRequest& request, PutResponse* response, Done done);
  void EnqueueDelete(const DeleteRequest& request, Done done);
  // Refuses (returns the error, keeping `write`) or queues it.
  absl::Status Enqueue(PendingWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The key's newest state, queued writes included.
  bool Latest(const std::string& key, uint64_t* version) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status Replay(bool repair);
  void WriterLoop();
  void CommitBatch(std::vector<PendingWrite> batch);
  void ApplyLocked(PendingWrite& write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailLocked(const absl::Status& status, std::vector<PendingWrite>* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SyncIfDue(bool force);
  // Compaction steps, on the writer thread.
  absl::Status StartCompaction();
  absl::Status CompactionStep(bool* finished);
  absl::Status FinishCompaction();
  void EndCompaction(absl::Status status);
  void Message(const std::string& line) const;

  const KeyValueLimits limits_;
  mutable Mutex mu_;
  absl::btree_map<std::string, Value> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t last_version_ ABSL_GUARDED_BY(mu_) = 0;

  // Persisted only (Open). Fixed after Open():
  bool persistent_ = false;
  PersistOptions options_;
  std::string log_path_;
  std::unique_ptr<DirLock> dir_lock_;
  std::thread writer_;
  // Writer thread only:
  std::unique_ptr<LogFile> log_;
  std::unique_ptr<LogFile> compact_;   // while compacting
  std::string compact_after_;          // last key written to compact_
  bool compact_scanned_first_ = false;
  uint64_t compact_tail_from_ = 0;     // old log offset the copy starts at
  bool dirty_ = false;                 // written since the last sync
  absl::Time last_sync_ = absl::InfinitePast();
  std::string batch_buf_;

  CondVar cv_;             // the writer: work to do, or stop
  CondVar compaction_cv_;  // Compact(): a compaction ended
  std::vector<PendingWrite> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Overlay> overlay_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // sticky
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t live_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t log_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool compaction_wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool compacting_ ABSL_GUARDED_BY(mu_) = false;
  // Do not compact again on thresholds below this log size (after a
  // failed compaction, wait for more growth).
  uint64_t compaction_floor_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t compactions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t compactions_ended_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_compaction_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::kv

#endif  // BEVRPC_SERVICES_KV_KV_SERVICE_H_
