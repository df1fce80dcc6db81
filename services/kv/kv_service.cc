#include "services/kv/kv_service.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace bevrpc::kv {
namespace {

// Page tokens are the last key returned, base64-encoded with a marker so
// that arbitrary strings are rejected.
constexpr char kTokenMarker[] = "kv1:";

std::string EncodeToken(const std::string& last_key) {
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenMarker, last_key));
}

bool DecodeToken(const std::string& token, std::string* last_key) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) ||
      !absl::StartsWith(raw, kTokenMarker)) {
    return false;
  }
  *last_key = raw.substr(sizeof(kTokenMarker) - 1);
  return true;
}

absl::Status VersionMismatch(const std::string& key, uint64_t expected,
                             uint64_t actual, bool exists) {
  return absl::FailedPreconditionError(absl::StrCat(
      "key \"", key, "\": expected_version ", expected, " but the key ",
      exists ? absl::StrCat("has version ", actual) : "does not exist"));
}

}  // namespace

absl::Status KeyValueService::CheckKey(const std::string& key) const {
  if (key.empty()) return absl::InvalidArgumentError("key is empty");
  if (key.size() > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key of ", key.size(), " bytes exceeds max_key_bytes ",
                     limits_.max_key_bytes));
  }
  return absl::OkStatus();
}

absl::Status KeyValueService::Get(const GetRequest& request,
                                  GetResponse* response) {
  absl::Status s = CheckKey(request.key());
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  auto it = entries_.find(request.key());
  if (it == entries_.end()) {
    return absl::NotFoundError(
        absl::StrCat("key \"", request.key(), "\" not found"));
  }
  Entry* e = response->mutable_entry();
  e->set_key(it->first);
  e->set_value(it->second.value);
  e->set_version(it->second.version);
  return absl::OkStatus();
}

absl::Status KeyValueService::CheckPut(const PutRequest& request) const {
  absl::Status s = CheckKey(request.key());
  if (!s.ok()) return s;
  if (request.value().size() > limits_.max_value_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "value of ", request.value().size(), " bytes exceeds max_value_bytes ",
        limits_.max_value_bytes));
  }
  return absl::OkStatus();
}

absl::Status KeyValueService::PutInMemory(const PutRequest& request,
                                          PutResponse* response) {
  absl::Status s = CheckPut(request);
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  auto it = entries_.find(request.key());
  if (request.has_expected_version()) {
    uint64_t actual = it == entries_.end() ? 0 : it->second.version;
    if (actual != request.expected_version()) {
      return VersionMismatch(request.key(), request.expected_version(), actual,
                             it != entries_.end());
    }
  }
  uint64_t version = ++last_version_;
  if (it == entries_.end()) {
    entries_.emplace(request.key(), Value{request.value(), version});
  } else {
    it->second = Value{request.value(), version};
  }
  Entry* e = response->mutable_entry();
  e->set_key(request.key());
  e->set_value(request.value());
  e->set_version(version);
  return absl::OkStatus();
}

absl::Status KeyValueService::DeleteInMemory(const DeleteRequest& request) {
  absl::Status s = CheckKey(request.key());
  if (!s.ok()) return s;
  MutexLock lock(&mu_);
  auto it = entries_.find(request.key());
  if (it == entries_.end()) {
    if (request.has_expected_version() && request.expected_version() != 0) {
      return VersionMismatch(request.key(), request.expected_version(), 0,
                             false);
    }
    return absl::NotFoundError(
        absl::StrCat("key \"", request.key(), "\" not found"));
  }
  if (request.has_expected_version() &&
      request.expected_version() != it->second.version) {
    return VersionMismatch(request.key(), request.expected_version(),
                           it->second.version, true);
  }
  entries_.erase(it);
  return absl::OkStatus();
}

absl::Status KeyValueService::Put(const PutRequest& request,
                                  PutResponse* response) {
  if (!persistent_) return PutInMemory(request, response);
  Notification done;
  absl::Status result;
  EnqueuePut(request, response, [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::Status KeyValueService::Delete(const DeleteRequest& request) {
  if (!persistent_) return DeleteInMemory(request);
  Notification done;
  absl::Status result;
  EnqueueDelete(request, [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

void KeyValueService::GetAsync(ServerContext&, const GetRequest& request,
                               GetResponse* response, Completion done) {
  std::move(done).Finish(Get(request, response));
}

void KeyValueService::PutAsync(ServerContext&, const PutRequest& request,
                               PutResponse* response, Completion done) {
  if (!persistent_) {
    std::move(done).Finish(PutInMemory(request, response));
    return;
  }
  EnqueuePut(request, response, [done = std::move(done)](absl::Status s) mutable {
    std::move(done).Finish(std::move(s));
  });
}

void KeyValueService::DeleteAsync(ServerContext&, const DeleteRequest& request,
                                  DeleteResponse*, Completion done) {
  if (!persistent_) {
    std::move(done).Finish(DeleteInMemory(request));
    return;
  }
  EnqueueDelete(request, [done = std::move(done)](absl::Status s) mutable {
    std::move(done).Finish(std::move(s));
  });
}

absl::Status KeyValueService::List(ServerContext&, const ListRequest& request,
                                   ListResponse* response) {
  uint32_t page_size = request.page_size() == 0
                           ? limits_.default_page_size
                           : std::min(request.page_size(), limits_.max_page_size);
  std::string after;
  bool has_token = !request.page_token().empty();
  if (has_token && !DecodeToken(request.page_token(), &after)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", request.page_token(),
                     "\" is not a token from a previous List response"));
  }
  MutexLock lock(&mu_);
  auto it = has_token ? entries_.upper_bound(after)
                      : entries_.lower_bound(request.prefix());
  for (; it != entries_.end() && absl::StartsWith(it->first, request.prefix());
       ++it) {
    if (static_cast<uint32_t>(response->entries_size()) == page_size) {
      response->set_next_page_token(
          EncodeToken(response->entries(page_size - 1).key()));
      break;
    }
    Entry* e = response->add_entries();
    e->set_key(it->first);
    e->set_value(it->second.value);
    e->set_version(it->second.version);
  }
  return absl::OkStatus();
}

// ---- Persistence ---------------------------------------------------------

absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view text) {
  if (text == "always") return FsyncPolicy::kAlways;
  if (text == "interval") return FsyncPolicy::kInterval;
  if (text == "never") return FsyncPolicy::kNever;
  return absl::InvalidArgumentError(absl::StrCat(
      "fsync policy \"", text, "\": expected always, interval or never"));
}

absl::string_view FsyncPolicyName(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kInterval:
      return "interval";
    case FsyncPolicy::kNever:
      return "never";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<KeyValueService>> KeyValueService::Open(
    KeyValueLimits limits, PersistOptions options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("PersistOptions::data_dir is empty");
  }
  if (options.fsync == FsyncPolicy::kInterval &&
      options.fsync_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("fsync_interval ",
                     absl::FormatDuration(options.fsync_interval),
                     " must be positive"));
  }
  absl::StatusOr<std::unique_ptr<DirLock>> lock =
      DirLock::Acquire(options.data_dir);
  if (!lock.ok()) return lock.status();
  std::unique_ptr<KeyValueService> kv(new KeyValueService(limits));
  kv->persistent_ = true;
  kv->dir_lock_ = *std::move(lock);
  kv->log_path_ = absl::StrCat(options.data_dir, "/", log_format::kLogFileName);
  const bool repair = options.repair;
  kv->options_ = std::move(options);
  if (absl::Status s = kv->Replay(repair); !s.ok()) return s;
  kv->writer_ = std::thread([raw = kv.get()] { raw->WriterLoop(); });
  return kv;
}

absl::Status KeyValueService::Replay(bool repair) {
  const std::string compact_path =
      absl::StrCat(options_.data_dir, "/", log_format::kCompactFileName);
  if (unlink(compact_path.c_str()) == 0) {
    Message(absl::StrCat("kv: removed ", compact_path,
                         ": a compaction that did not finish (", log_path_,
                         " is complete without it)"));
  }
  ReadLimits read_limits{limits_.max_key_bytes, limits_.max_value_bytes};
  MutexLock lock(&mu_);
  absl::StatusOr<ReplayResult> r = ReplayLogFile(
      log_path_, read_limits, repair, [this](const LogRecord& rec) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        last_version_ = std::max(last_version_, rec.version);
        std::string key(rec.key);
        if (rec.type == log_format::RecordType::kPut) {
          auto [it, added] = entries_.try_emplace(std::move(key));
          if (!added) live_bytes_ -= RecordSize(it->first.size(),
                                                it->second.value.size());
          it->second = Value{std::string(rec.value), rec.version};
          live_bytes_ += RecordSize(it->first.size(), rec.value.size());
        } else if (rec.type == log_format::RecordType::kDelete) {
          auto it = entries_.find(key);
          if (it == entries_.end()) return;
          live_bytes_ -= RecordSize(it->first.size(), it->second.value.size());
          entries_.erase(it);
        }
      });
  if (!r.ok()) return r.status();
  const bool torn = r->dropped_bytes > 0;
  if (torn) {
    Message(absl::StrCat(
        "kv: ", log_path_, ": dropped ", r->dropped_bytes,
        " bytes at offset ", r->valid_bytes,
        ": a record cut short at the end of the log (a crash mid-write)",
        repair ? " or damage (--data_repair)" : ""));
  }
  absl::StatusOr<std::unique_ptr<LogFile>> log = LogFile::Open(
      log_path_, torn ? static_cast<int64_t>(r->valid_bytes) : -1);
  if (!log.ok()) return log.status();
  log_ = *std::move(log);
  if (torn) {
    if (absl::Status s = log_->Sync(); !s.ok()) return s;
  }
  log_bytes_ = log_->size();
  Message(absl::StrCat("kv: loaded ", entries_.size(), " entries (",
                       r->records, " records, ", r->valid_bytes,
                       " bytes) from ", log_path_, "; last version ",
                       last_version_, "; fsync=",
                       FsyncPolicyName(options_.fsync)));
  return absl::OkStatus();
}

KeyValueService::~KeyValueService() {
  if (!writer_.joinable()) return;  // In memory, or Open() failed.
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
    compaction_cv_.SignalAll();
  }
  writer_.join();
}

void KeyValueService::Message(const std::string& line) const {
  if (options_.log_message) {
    options_.log_message(line);
  } else {
    std::cerr << line << std::endl;
  }
}

bool KeyValueService::Latest(const std::string& key, uint64_t* version) const {
  auto o = overlay_.find(key);
  if (o != overlay_.end()) {
    *version = o->second.version;
    return o->second.exists;
  }
  auto it = entries_.find(key);
  *version = it == entries_.end() ? 0 : it->second.version;
  return it != entries_.end();
}

absl::Status KeyValueService::Enqueue(PendingWrite& write) {
  if (!failed_.ok()) return failed_;
  if (queued_bytes_ > 0 &&
      queued_bytes_ + write.bytes > options_.max_queued_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "kv: ", queued_bytes_, " bytes of writes already queued for ",
        log_path_, " (max_queued_bytes ", options_.max_queued_bytes,
        "); the disk is not keeping up, retry later"));
  }
  queued_bytes_ += write.bytes;
  Overlay& o = overlay_[write.key];
  o.exists = write.type == log_format::RecordType::kPut;
  o.version = write.version;
  ++o.pending;
  queue_.push_back(std::move(write));
  if (queue_.size() == 1) cv_.Signal();
  return absl::OkStatus();
}

void KeyValueService::EnqueuePut(const PutRequest& request,
                                 PutResponse* response, Done done) {
  absl::Status s = CheckPut(request);
  if (s.ok()) {
    MutexLock lock(&mu_);
    uint64_t actual = 0;
    bool exists = Latest(request.key(), &actual);
    if (request.has_expected_version() &&
        request.expected_version() != actual) {
      s = VersionMismatch(request.key(), request.expected_version(), actual,
                          exists);
    } else {
      PendingWrite w{log_format::RecordType::kPut, request.key(),
                     request.value(), last_version_ + 1,
                     RecordSize(request.key().size(), request.value().size()),
                     std::move(done)};
      s = Enqueue(w);
      if (s.ok()) {
        ++last_version_;
        Entry* e = response->mutable_entry();
        e->set_key(request.key());
        e->set_value(request.value());
        e->set_version(last_version_);
        return;
      }
      done = std::move(w.done);
    }
  }
  done(std::move(s));
}

void KeyValueService::EnqueueDelete(const DeleteRequest& request, Done done) {
  absl::Status s = CheckKey(request.key());
  if (s.ok()) {
    MutexLock lock(&mu_);
    uint64_t actual = 0;
    bool exists = Latest(request.key(), &actual);
    if (request.has_expected_version() &&
        request.expected_version() != actual) {
      s = VersionMismatch(request.key(), request.expected_version(), actual,
                          exists);
    } else if (!exists) {
      s = absl::NotFoundError(
          absl::StrCat("key \"", request.key(), "\" not found"));
    } else {
      PendingWrite w{log_format::RecordType::kDelete, request.key(), "",
                     actual, RecordSize(request.key().size(), 0),
                     std::move(done)};
      s = Enqueue(w);
      if (s.ok()) return;
      done = std::move(w.done);
    }
  }
  done(std::move(s));
}

void KeyValueService::WriterLoop() {
  for (;;) {
    std::vector<PendingWrite> batch;
    bool compact = false;
    bool stopping = false;
    {
      MutexLock lock(&mu_);
      for (;;) {
        if (!queue_.empty() || stop_ || compaction_wanted_ || compacting_) {
          break;
        }
        if (options_.fsync == FsyncPolicy::kInterval && dirty_) {
          absl::Duration left =
              last_sync_ + options_.fsync_interval - absl::Now();
          if (left <= absl::ZeroDuration()) break;
          cv_.WaitWithTimeout(&mu_, left);
        } else {
          cv_.Wait(&mu_);
        }
      }
      batch.swap(queue_);
      stopping = stop_;
      compact = (compaction_wanted_ || compacting_) && !stopping;
      if (compaction_wanted_ && !compacting_ && !stopping) {
        compaction_wanted_ = false;
        compacting_ = true;
      }
    }
    if (!batch.empty()) CommitBatch(std::move(batch));
    if (compact) {
      bool finished = false;
      absl::Status s = compact_ == nullptr ? StartCompaction()
                                           : CompactionStep(&finished);
      if (!s.ok() || finished) EndCompaction(std::move(s));
    }
    if (stopping) {
      MutexLock lock(&mu_);
      if (queue_.empty()) break;
    }
    SyncIfDue(/*force=*/false);
  }
  if (compact_ != nullptr) EndCompaction(absl::CancelledError("stopping"));
  SyncIfDue(/*force=*/true);
}

void KeyValueService::SyncIfDue(bool force) {
  if (!dirty_) return;
  if (!force && (options_.fsync != FsyncPolicy::kInterval ||
                 absl::Now() < last_sync_ + options_.fsync_interval)) {
    return;
  }
  dirty_ = false;
  last_sync_ = absl::Now();
  absl::Status s = log_->Sync();
  if (!s.ok()) {
    Message(absl::StrCat("kv: ", s.message(),
                         "; refusing further writes until a restart"));
    MutexLock lock(&mu_);
    if (failed_.ok()) failed_ = absl::UnavailableError(s.message());
  }
}

void KeyValueService::CommitBatch(std::vector<PendingWrite> batch) {
  if (options_.testing_before_write) options_.testing_before_write();
  batch_buf_.clear();
  for (const PendingWrite& w : batch) {
    AppendRecord(w.type, w.version, w.key, w.value, &batch_buf_);
  }
  absl::Status s = log_->Append(batch_buf_);
  if (s.ok() && options_.fsync == FsyncPolicy::kAlways) {
    s = log_->Sync();
  } else if (s.ok()) {
    dirty_ = true;
  }
  absl::Status result;
  {
    MutexLock lock(&mu_);
    if (s.ok()) {
      for (PendingWrite& w : batch) ApplyLocked(w);
      log_bytes_ = log_->size();
      const bool big = log_bytes_ > options_.compaction_min_bytes &&
                       log_bytes_ > compaction_floor_ &&
                       log_bytes_ > options_.compaction_ratio * live_bytes_;
      if (big && !compacting_) compaction_wanted_ = true;
    } else {
      result = absl::UnavailableError(absl::StrCat(
          "kv: ", s.message(), "; the write was not applied"));
      FailLocked(result, &batch);
    }
  }
  if (!s.ok()) Message(std::string(result.message()));
  for (PendingWrite& w : batch) w.done(result);
}

void KeyValueService::ApplyLocked(PendingWrite& w) {
  queued_bytes_ -= w.bytes;
  auto o = overlay_.find(w.key);
  if (o != overlay_.end() && --o->second.pending == 0) overlay_.erase(o);
  if (w.type == log_format::RecordType::kPut) {
    auto [it, added] = entries_.try_emplace(std::move(w.key));
    if (!added) {
      live_bytes_ -= RecordSize(it->first.size(), it->second.value.size());
    }
    live_bytes_ += RecordSize(it->first.size(), w.value.size());
    it->second = Value{std::move(w.value), w.version};
  } else {
    auto it = entries_.find(w.key);
    if (it == entries_.end()) return;
    live_bytes_ -= RecordSize(it->first.size(), it->second.value.size());
    entries_.erase(it);
  }
}

// Every queued write was checked against the failed ones (compare-and-set,
// NOT_FOUND): they fail too, and the overlay goes with them.
void KeyValueService::FailLocked(const absl::Status& status,
                                 std::vector<PendingWrite>* batch) {
  for (PendingWrite& w : queue_) batch->push_back(std::move(w));
  queue_.clear();
  overlay_.clear();
  queued_bytes_ = 0;
  if (!log_->broken().ok() && failed_.ok()) {
    failed_ = absl::UnavailableError(absl::StrCat(
        "kv: ", log_->broken().message(),
        "; refusing writes until a restart"));
  }
  (void)status;
}

absl::Status KeyValueService::StartCompaction() {
  uint64_t last_version = 0;
  {
    MutexLock lock(&mu_);
    if (!failed_.ok()) return failed_;
    // CommitBatch applies what it writes before returning: everything in
    // the log up to here is in entries_, and what comes later is copied
    // from the log's tail at the end.
    compact_tail_from_ = log_->size();
    last_version = last_version_;
  }
  absl::StatusOr<std::unique_ptr<LogFile>> file = LogFile::Open(
      absl::StrCat(options_.data_dir, "/", log_format::kCompactFileName),
      /*truncate_to=*/0);
  if (!file.ok()) return file.status();
  compact_ = *std::move(file);
  compact_after_.clear();
  compact_scanned_first_ = false;
  std::string buf;
  AppendRecord(log_format::RecordType::kLastVersion, last_version, "", "",
               &buf);
  return compact_->Append(buf);
}

absl::Status KeyValueService::CompactionStep(bool* finished) {
  std::string buf;
  bool scanned = false;
  {
    MutexLock lock(&mu_);
    auto it = compact_scanned_first_ ? entries_.upper_bound(compact_after_)
                                     : entries_.begin();
    for (; it != entries_.end() && buf.size() < options_.compaction_chunk_bytes;
         ++it) {
      AppendRecord(log_format::RecordType::kPut, it->second.version, it->first,
                   it->second.value, &buf);
      compact_after_ = it->first;
      compact_scanned_first_ = true;
    }
    scanned = it == entries_.end();
  }
  if (absl::Status s = compact_->Append(buf); !s.ok()) return s;
  if (!scanned) return absl::OkStatus();
  *finished = true;
  return FinishCompaction();
}

absl::Status KeyValueService::FinishCompaction() {
  using CrashPoint = PersistOptions::CrashPoint;
  const uint64_t old_size = log_->size();
  constexpr uint64_t kCopyChunk = 1 << 20;
  std::string buf;
  for (uint64_t at = compact_tail_from_; at < old_size; at += kCopyChunk) {
    size_t n = static_cast<size_t>(std::min(kCopyChunk, old_size - at));
    absl::Status s = log_->ReadAt(at, n, &buf);
    if (s.ok()) s = compact_->Append(buf);
    if (!s.ok()) return s;
  }
  auto crash = [&](CrashPoint point) {
    if (options_.testing_compaction_crash != point) return false;
    compact_.reset();  // Closed, not removed: as a process death leaves it.
    MutexLock lock(&mu_);
    failed_ = absl::AbortedError("kv: testing crash during compaction");
    return true;
  };
  if (crash(CrashPoint::kBeforeSync)) return absl::AbortedError("crash");
  if (absl::Status s = compact_->Sync(); !s.ok()) return s;
  if (crash(CrashPoint::kBeforeRename)) return absl::AbortedError("crash");
  if (absl::Status s = compact_->RenameTo(log_path_); !s.ok()) return s;
  // From here the new file is kv.log: write to it whatever happens next.
  log_ = std::move(compact_);
  dirty_ = false;
  if (crash(CrashPoint::kBeforeDirSync)) return absl::AbortedError("crash");
  if (absl::Status s = SyncDir(options_.data_dir); !s.ok()) {
    // The rename may not survive a power loss, which would bring back the
    // old log without what is written from now on: stop writing.
    MutexLock lock(&mu_);
    failed_ = absl::UnavailableError(absl::StrCat(
        "kv: ", s.message(), " after compacting; refusing writes until a "
        "restart"));
    return s;
  }
  Message(absl::StrCat("kv: compacted ", log_path_, " from ", old_size,
                       " to ", log_->size(), " bytes"));
  return absl::OkStatus();
}

void KeyValueService::EndCompaction(absl::Status status) {
  if (compact_ != nullptr) {
    unlink(compact_->path().c_str());
    compact_.reset();
  }
  if (!status.ok() && !absl::IsCancelled(status)) {
    Message(absl::StrCat("kv: compaction of ", log_path_,
                         " failed: ", status.message()));
  }
  MutexLock lock(&mu_);
  log_bytes_ = log_->size();
  compacting_ = false;
  ++compactions_ended_;
  if (status.ok()) {
    ++compactions_;
  } else {
    // Try again only after as much growth again.
    compaction_floor_ = log_bytes_ * 2;
  }
  last_compaction_ = std::move(status);
  compaction_cv_.SignalAll();
}

absl::Status KeyValueService::Compact() {
  if (!persistent_) {
    return absl::FailedPreconditionError("Compact(): the store is in memory");
  }
  MutexLock lock(&mu_);
  const uint64_t target = compactions_ended_ + (compacting_ ? 2 : 1);
  compaction_wanted_ = true;
  cv_.SignalAll();
  while (compactions_ended_ < target && !stop_) compaction_cv_.Wait(&mu_);
  return last_compaction_;
}

LogStats KeyValueService::log_stats() const {
  MutexLock lock(&mu_);
  LogStats stats;
  stats.log_bytes = log_bytes_;
  stats.live_bytes = live_bytes_;
  stats.queued_bytes = queued_bytes_;
  stats.compactions = compactions_;
  stats.last_version = last_version_;
  return stats;
}

}  // namespace bevrpc::kv
