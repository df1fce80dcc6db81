// kv_server: serves bevrpc.kv.KeyValue, a key-value store, in memory or
// persisted to an append-only log.
//
//   kv_server --port=0                                  # in memory
//   kv_server --port=0 --data_dir=/var/lib/kv           # persisted
//   bevrpc call 127.0.0.1:PORT bevrpc.kv.KeyValue/Put '{"key":"a","value":"1"}'
//
// --data_dir=DIR keeps the data in DIR/kv.log, replayed before the server
// listens (so health answers SERVING only with the data loaded); DIR/LOCK
// keeps a second process out. --fsync=always|interval|never says when an
// acknowledged write reaches the disk; every policy has written it (write
// (2)) before the call succeeds, so kill -9 loses no acknowledged write
// under any of them. always (the default) also survives power loss.
// --data_max_queued_bytes bounds the writes waiting for the disk (beyond
// it: RESOURCE_EXHAUSTED); --data_compaction_min_bytes starts compaction;
// --data_repair starts despite corruption in the middle of the log,
// dropping what follows it. Details: docs/kv.md and kv_service.h.
//
// Prints "listening on 127.0.0.1:PORT" once ready; on SIGTERM or SIGINT
// drains gracefully, writes and syncs what is queued, and exits 0. A bad
// flag exits 2; a data directory that cannot be used (locked, corrupt)
// exits 1 with a message naming it. See services/builtin/server_main.h.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/builtin/server_main.h"
#include "services/kv/kv_service.h"

ABSL_FLAG(std::string, data_dir, "",
          "persist the store in this directory (created if missing): an "
          "append-only log replayed at start. Empty: in memory only");
ABSL_FLAG(std::string, fsync, "always",
          "with --data_dir, when an acknowledged write reaches the disk. "
          "Every policy writes the record (write(2)) before the call "
          "succeeds, so a process crash (kill -9) loses nothing "
          "acknowledged. always: fdatasync before acknowledging (one sync "
          "for all writes queued meanwhile); survives power loss; the "
          "default, as etcd, because acknowledged should mean kept. "
          "interval: sync every --fsync_interval; power loss loses up to "
          "that much (Redis's everysec). never: leave it to the kernel");
ABSL_FLAG(absl::Duration, fsync_interval, absl::Seconds(1),
          "with --fsync=interval, how often to fdatasync");
ABSL_FLAG(int64_t, data_max_queued_bytes, 64 << 20,
          "with --data_dir, most bytes of writes waiting for the disk; "
          "beyond it Put and Delete fail at once with RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, data_compaction_min_bytes, 64 << 20,
          "with --data_dir, compact the log (rewrite the live entries) "
          "once it is larger than this and than twice the live data");
ABSL_FLAG(bool, data_repair, false,
          "with --data_dir, if the log is corrupt in the middle, keep the "
          "good records before the damage and drop the rest (logged) "
          "instead of refusing to start");

namespace {

// Flags into options; exits 2 (usage error) on a bad one.
bevrpc::kv::PersistOptions PersistFlags() {
  bevrpc::kv::PersistOptions options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  auto bad = [](const std::string& message) {
    std::cerr << "kv_server: " << message << "\n";
    std::exit(2);
  };
  absl::StatusOr<bevrpc::kv::FsyncPolicy> policy =
      bevrpc::kv::ParseFsyncPolicy(absl::GetFlag(FLAGS_fsync));
  if (!policy.ok()) {
    bad(absl::StrCat("--fsync=", absl::GetFlag(FLAGS_fsync),
                     ": expected always, interval or never"));
  }
  options.fsync = *policy;
  options.fsync_interval = absl::GetFlag(FLAGS_fsync_interval);
  if (options.fsync_interval <= absl::ZeroDuration()) {
    bad(absl::StrCat("--fsync_interval=",
                     absl::FormatDuration(options.fsync_interval),
                     ": must be positive"));
  }
  const int64_t queued = absl::GetFlag(FLAGS_data_max_queued_bytes);
  const int64_t compact = absl::GetFlag(FLAGS_data_compaction_min_bytes);
  if (queued <= 0) {
    bad(absl::StrCat("--data_max_queued_bytes=", queued, ": must be > 0"));
  }
  if (compact < 0) {
    bad(absl::StrCat("--data_compaction_min_bytes=", compact,
                     ": must be >= 0"));
  }
  options.max_queued_bytes = static_cast<size_t>(queued);
  options.compaction_min_bytes = static_cast<uint64_t>(compact);
  options.repair = absl::GetFlag(FLAGS_data_repair);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  // Outlives ServerMain's server, as RegisterService requires; by the time
  // it is destroyed (syncing the log) the server has drained its calls.
  std::unique_ptr<bevrpc::kv::KeyValueService> kv;
  return bevrpc::builtin::ServerMain(
      argc, argv, "kv_server",
      [&](bevrpc::Server& server, bevrpc::builtin::HealthService&) {
        // Flags are parsed by now. Replay happens here, before Start().
        bevrpc::kv::PersistOptions options = PersistFlags();
        if (options.data_dir.empty()) {
          kv = std::make_unique<bevrpc::kv::KeyValueService>();
        } else {
          absl::StatusOr<std::unique_ptr<bevrpc::kv::KeyValueService>> opened =
              bevrpc::kv::KeyValueService::Open({}, std::move(options));
          if (!opened.ok()) {
            return absl::Status(
                opened.status().code(),
                absl::StrCat("--data_dir=", absl::GetFlag(FLAGS_data_dir),
                             ": ", opened.status().message()));
          }
          kv = *std::move(opened);
        }
        return server.RegisterService(kv.get());
      });
}
