// KeyValueService with a data directory: restarts keep data and versions,
// writes become visible only once logged, the queue bound, write errors,
// compaction (with concurrent writes, and a crash at each of its steps) and
// the directory lock. Calls go through a real Server and the generated stub.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "services/kv/kv_service.h"
#include "transport/sync.h"

namespace bevrpc::kv {
namespace {

using CrashPoint = PersistOptions::CrashPoint;

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name);
  std::string cmd = absl::StrCat("rm -rf '", dir, "'");
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// A persisted store served over RPC; Restart() closes and reopens it on the
// same directory.
class PersistTest : public ::testing::Test {
 protected:
  void Open(PersistOptions options) {
    options.log_message = [this](const std::string& line) {
      MutexLock lock(&messages_mu_);
      messages_.push_back(line);
    };
    options_ = options;
    auto kv = KeyValueService::Open({}, std::move(options));
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_ = *std::move(kv);
    server_ = std::make_unique<Server>(ServerOptions{});
    ASSERT_TRUE(server_->RegisterService(kv_.get()).ok());
    ASSERT_TRUE(server_->Start().ok());
    auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server_->port()));
    ASSERT_TRUE(channel.ok());
    channel_ = *std::move(channel);
    stub_ = std::make_unique<KeyValue::Stub>(channel_.get());
  }
  void Close() {
    stub_.reset();
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
    server_.reset();
    kv_.reset();
    MutexLock lock(&messages_mu_);
    messages_.clear();
  }
  void Restart() {
    Close();
    Open(options_);
  }
  void TearDown() override { Close(); }

  PersistOptions Options(const std::string& name) {
    PersistOptions o;
    o.data_dir = TempDir(name);
    return o;
  }
  absl::StatusOr<PutResponse> Put(const std::string& key,
                                  const std::string& value) {
    PutRequest req;
    req.set_key(key);
    req.set_value(value);
    return stub_->Put(req);
  }
  absl::StatusOr<GetResponse> Get(const std::string& key) {
    GetRequest req;
    req.set_key(key);
    return stub_->Get(req);
  }
  absl::Status Delete(const std::string& key) {
    DeleteRequest req;
    req.set_key(key);
    return stub_->Delete(req).status();
  }
  bool HasMessage(absl::string_view text) {
    MutexLock lock(&messages_mu_);
    for (const std::string& m : messages_) {
      if (absl::StrContains(m, text)) return true;
    }
    return false;
  }

  PersistOptions options_;
  std::unique_ptr<KeyValueService> kv_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<KeyValue::Stub> stub_;
  Mutex messages_mu_;
  std::vector<std::string> messages_ ABSL_GUARDED_BY(messages_mu_);
};

TEST_F(PersistTest, RestartKeepsDataVersionsAndDeletes) {
  for (FsyncPolicy policy :
       {FsyncPolicy::kAlways, FsyncPolicy::kInterval, FsyncPolicy::kNever}) {
    SCOPED_TRACE(FsyncPolicyName(policy));
    PersistOptions o = Options(absl::StrCat("restart_", FsyncPolicyName(policy)));
    o.fsync = policy;
    Open(o);
    ASSERT_TRUE(Put("a", "1").ok());
    ASSERT_TRUE(Put("b", "2").ok());
    auto b2 = Put("b", "22");
    ASSERT_TRUE(b2.ok());
    auto gone = Put("gone", "x");  // the highest version, then deleted
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE(Delete("gone").ok());
    ASSERT_TRUE(Delete("a").ok());
    Restart();
    EXPECT_TRUE(HasMessage("loaded 1 entries (6 records"));
    auto got = Get("b");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->entry().value(), "22");
    EXPECT_EQ(got->entry().version(), b2->entry().version());
    EXPECT_EQ(Get("a").status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(Get("gone").status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(kv_->log_stats().last_version, gone->entry().version());
    auto next = Put("c", "3");
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->entry().version(), gone->entry().version() + 1);
    // Compare-and-set against the restored version.
    PutRequest cas;
    cas.set_key("b");
    cas.set_value("333");
    cas.set_expected_version(b2->entry().version());
    EXPECT_TRUE(stub_->Put(cas).ok());
    Close();
  }
}

// The writer is held back: a queued Put is not visible to Get, but a second
// compare-and-set on the same version already loses to it.
TEST_F(PersistTest, QueuedWriteInvisibleUntilLoggedButCheckedByCas) {
  Notification release;
  PersistOptions o = Options("visible");
  o.testing_before_write = [&release] { release.WaitForNotification(); };
  Open(o);
  PutRequest first;
  first.set_key("k");
  first.set_value("v1");
  first.set_expected_version(0);
  PutResponse first_reply;
  Notification first_done;
  absl::Status first_status;
  stub_->PutAsync(first, &first_reply, {}, [&](absl::Status s) {
    first_status = s;
    first_done.Notify();
  });
  // Wait until it is queued (the queue holds its bytes).
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (kv_->log_stats().queued_bytes == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_GT(kv_->log_stats().queued_bytes, 0u);
  EXPECT_EQ(Get("k").status().code(), absl::StatusCode::kNotFound);
  PutRequest second = first;
  second.set_value("v2");
  auto lost = stub_->Put(second);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(lost.status().message(),
            "key \"k\": expected_version 0 but the key has version 1");
  EXPECT_FALSE(first_done.HasBeenNotified());
  release.Notify();
  ASSERT_TRUE(first_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(first_status.ok()) << first_status;
  EXPECT_EQ(first_reply.entry().version(), 1u);
  auto got = Get("k");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->entry().value(), "v1");
}

TEST_F(PersistTest, QueueBoundFailsWritesAtOnceWithResourceExhausted) {
  Notification release;
  PersistOptions o = Options("bound");
  o.max_queued_bytes = 16 * 1024;
  o.testing_before_write = [&release] { release.WaitForNotification(); };
  Open(o);
  constexpr int kMaxCalls = 100;  // 100 KiB offered against a 16 KiB bound
  std::vector<PutResponse> replies(kMaxCalls);
  std::vector<absl::Status> statuses(kMaxCalls);
  std::atomic<int> done{0};
  int sent = 0;
  uint64_t queued = 0;
  for (; sent < kMaxCalls; ++sent) {
    PutRequest req;
    req.set_key(absl::StrCat("key", sent));
    req.set_value(std::string(1024, 'v'));
    stub_->PutAsync(req, &replies[sent], {}, [&, i = sent](absl::Status s) {
      statuses[i] = s;
      done.fetch_add(1);
    });
    // Calls go one at a time: each is either queued (the queue grows by its
    // record) or refused (finished at once, as the writer is held).
    const uint64_t if_queued = queued + 28 + req.key().size() + 1024;
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (done.load() == 0 && kv_->log_stats().queued_bytes != if_queued &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    if (done.load() > 0) break;
    ASSERT_EQ(kv_->log_stats().queued_bytes, if_queued);
    queued = if_queued;
  }
  ASSERT_LT(sent, kMaxCalls) << "never refused";
  EXPECT_EQ(statuses[sent].code(), absl::StatusCode::kResourceExhausted)
      << statuses[sent];
  EXPECT_TRUE(absl::StrContains(statuses[sent].message(),
                                "(max_queued_bytes 16384)"))
      << statuses[sent];
  EXPECT_LE(kv_->log_stats().queued_bytes, 16u * 1024);
  EXPECT_GE(sent, 10);  // 16 KiB holds at least ten 1 KiB records
  release.Notify();
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (done.load() < sent + 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(done.load(), sent + 1);
  for (int i = 0; i < sent; ++i) EXPECT_TRUE(statuses[i].ok()) << i;
  EXPECT_EQ(kv_->log_stats().queued_bytes, 0u);
  // Room again, and the accepted writes are all kept.
  EXPECT_TRUE(Put("after", "x").ok());
  Restart();
  for (int i = 0; i < sent; ++i) EXPECT_TRUE(Get(absl::StrCat("key", i)).ok());
  EXPECT_EQ(Get(absl::StrCat("key", sent)).status().code(),
            absl::StatusCode::kNotFound);
}

// RLIMIT_FSIZE makes write(2) fail with EFBIG, as a full disk fails with
// ENOSPC: the call fails UNAVAILABLE, nothing is applied, the partial write
// is cut off, and once there is room again writes succeed.
TEST_F(PersistTest, WriteErrorFailsTheCallAndLaterWritesRecover) {
  Open(Options("write_error"));
  ASSERT_TRUE(Put("small", "1").ok());
  const uint64_t size = kv_->log_stats().log_bytes;
  signal(SIGXFSZ, SIG_IGN);
  rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit tight = old;
  tight.rlim_cur = size + 100;  // room for part of the next record only
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tight), 0);
  auto big = Put("big", std::string(1000, 'x'));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(big.status().message(),
                                "the write was not applied"))
      << big.status();
  EXPECT_EQ(Get("big").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(kv_->log_stats().log_bytes, size);
  auto later = Put("later", "2");
  ASSERT_TRUE(later.ok()) << later.status();
  Restart();
  EXPECT_TRUE(Get("small").ok());
  EXPECT_TRUE(Get("later").ok());
  EXPECT_EQ(Get("big").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PersistTest, CompactsWhenTheLogOutgrowsTheLiveData) {
  PersistOptions o = Options("compact");
  o.compaction_min_bytes = 8 * 1024;
  o.compaction_chunk_bytes = 256;  // many steps
  Open(o);
  uint64_t last = 0;
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 10; ++k) {
      auto r = Put(absl::StrCat("key", k), absl::StrCat("value", round));
      ASSERT_TRUE(r.ok());
      last = r->entry().version();
    }
  }
  ASSERT_TRUE(Put("doomed", "x").ok());
  ASSERT_TRUE(Delete("doomed").ok());
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (kv_->log_stats().compactions == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_GE(kv_->log_stats().compactions, 1u);
  ASSERT_TRUE(kv_->Compact().ok());
  LogStats stats = kv_->log_stats();
  EXPECT_EQ(stats.log_bytes, stats.live_bytes + 28);  // + kLastVersion record
  EXPECT_TRUE(HasMessage("compacted"));
  const uint64_t last_version = stats.last_version;
  EXPECT_EQ(last_version, last + 1);  // Delete takes no version
  Restart();
  for (int k = 0; k < 10; ++k) {
    auto got = Get(absl::StrCat("key", k));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->entry().value(), "value49");
  }
  EXPECT_EQ(kv_->log_stats().last_version, last_version);
  EXPECT_FALSE(FileExists(o.data_dir + "/kv.log.compact"));
}

// Writers keep going while compactions run; every final value survives.
TEST_F(PersistTest, CompactionWithConcurrentWrites) {
  PersistOptions o = Options("compact_concurrent");
  o.compaction_chunk_bytes = 128;
  Open(o);
  constexpr int kThreads = 4, kKeys = 20, kRounds = 30;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        for (int k = 0; k < kKeys; ++k) {
          std::string key = absl::StrCat("t", t, "k", k);
          if (!Put(key, absl::StrCat(r)).ok()) failures.fetch_add(1);
          if (k % 7 == 0 && r == kRounds - 1 && !Delete(key).ok()) {
            failures.fetch_add(1);
          }
        }
      }
    });
  }
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(kv_->Compact().ok());
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(kv_->Compact().ok());
  Restart();
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kKeys; ++k) {
      auto got = Get(absl::StrCat("t", t, "k", k));
      if (k % 7 == 0) {
        EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
      } else {
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_EQ(got->entry().value(), absl::StrCat(kRounds - 1));
      }
    }
  }
}

// A crash at each step of compaction leaves a loadable directory with
// every acknowledged write.
TEST_F(PersistTest, CrashAtEachCompactionStepLeavesALoadableState) {
  for (CrashPoint point : {CrashPoint::kBeforeSync, CrashPoint::kBeforeRename,
                           CrashPoint::kBeforeDirSync}) {
    SCOPED_TRACE(static_cast<int>(point));
    PersistOptions o = Options(absl::StrCat("crash", static_cast<int>(point)));
    o.testing_compaction_crash = point;
    Open(o);
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(Put(absl::StrCat("k", i % 5), absl::StrCat(i)).ok());
    }
    ASSERT_TRUE(Delete("k0").ok());
    const uint64_t last_version = kv_->log_stats().last_version;
    EXPECT_EQ(kv_->Compact().code(), absl::StatusCode::kAborted);
    // After the "crash" the store refuses writes rather than lose them.
    EXPECT_FALSE(Put("late", "x").ok());
    const bool leftover = FileExists(o.data_dir + "/kv.log.compact");
    EXPECT_EQ(leftover, point != CrashPoint::kBeforeDirSync);
    o.testing_compaction_crash = CrashPoint::kNone;
    options_.testing_compaction_crash = CrashPoint::kNone;
    Restart();
    EXPECT_EQ(HasMessage("a compaction that did not finish"), leftover);
    EXPECT_FALSE(FileExists(o.data_dir + "/kv.log.compact"));
    EXPECT_EQ(Get("k0").status().code(), absl::StatusCode::kNotFound);
    for (int k = 1; k < 5; ++k) {
      auto got = Get(absl::StrCat("k", k));
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(got->entry().value(), absl::StrCat(15 + k));
    }
    EXPECT_EQ(kv_->log_stats().last_version, last_version);
    EXPECT_EQ(Get("late").status().code(), absl::StatusCode::kNotFound);
    Close();
  }
}

TEST_F(PersistTest, TornTailIsTruncatedAndReported) {
  PersistOptions o = Options("torn");
  Open(o);
  ASSERT_TRUE(Put("kept", "yes").ok());
  Close();
  {
    std::ofstream log(o.data_dir + "/kv.log", std::ios::binary | std::ios::app);
    log << std::string("\x12\x34\x56\x78partial-record", 18);
  }
  Open(o);
  EXPECT_TRUE(HasMessage(": dropped 18 bytes at offset 35"));  // 28 + 4 + 3
  EXPECT_TRUE(Get("kept").ok());
  ASSERT_TRUE(Put("next", "1").ok());
  Restart();
  EXPECT_TRUE(Get("next").ok());
}

TEST_F(PersistTest, CorruptMiddleRefusesToOpen) {
  PersistOptions o = Options("corrupt");
  Open(o);
  ASSERT_TRUE(Put("a", "1").ok());
  ASSERT_TRUE(Put("b", "2").ok());
  Close();
  {
    std::fstream log(o.data_dir + "/kv.log",
                     std::ios::binary | std::ios::in | std::ios::out);
    log.seekp(29);  // the key of the first record
    log.put('X');
  }
  auto kv = KeyValueService::Open({}, o);
  ASSERT_FALSE(kv.ok());
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(
      kv.status().message(),
      absl::StrCat(o.data_dir, "/kv.log: corrupt record at offset 0")))
      << kv.status();
  o.repair = true;
  kv = KeyValueService::Open({}, o);
  ASSERT_TRUE(kv.ok()) << kv.status();
}

TEST_F(PersistTest, SecondOpenOfTheDirectoryFails) {
  PersistOptions o = Options("locked");
  Open(o);
  auto second = KeyValueService::Open({}, o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(second.status().message(), "is in use"));
}

TEST(FsyncPolicyTest, Parses) {
  EXPECT_EQ(*ParseFsyncPolicy("always"), FsyncPolicy::kAlways);
  EXPECT_EQ(*ParseFsyncPolicy("interval"), FsyncPolicy::kInterval);
  EXPECT_EQ(*ParseFsyncPolicy("never"), FsyncPolicy::kNever);
  EXPECT_EQ(ParseFsyncPolicy("sometimes").status().message(),
            "fsync policy \"sometimes\": expected always, interval or never");
}

}  // namespace
}  // namespace bevrpc::kv
