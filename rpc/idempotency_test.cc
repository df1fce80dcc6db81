// The process-wide idempotency table: lookups of registered, replaced and
// unknown names, batches, and lock-free readers while another thread
// registers (run under --config=tsan). The table is process-wide and has no
// reset, so each test uses names of its own.
#include "rpc/idempotency.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bevrpc {
namespace {

TEST(IdempotencyTest, UnregisteredMethodIsUnknown) {
  EXPECT_EQ(LookupIdempotency("test.Unregistered/Get"), Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency(""), Idempotency::kUnknown);
}

TEST(IdempotencyTest, LookupReturnsTheRegisteredLevel) {
  RegisterIdempotency("test.Lookup/Get", Idempotency::kNoSideEffects);
  RegisterIdempotency("test.Lookup/Put", Idempotency::kIdempotent);
  EXPECT_EQ(LookupIdempotency("test.Lookup/Get"), Idempotency::kNoSideEffects);
  EXPECT_EQ(LookupIdempotency("test.Lookup/Put"), Idempotency::kIdempotent);
}

TEST(IdempotencyTest, NamesMatchExactly) {
  RegisterIdempotency("test.Exact/Get", Idempotency::kNoSideEffects);
  EXPECT_EQ(LookupIdempotency("test.Exact.Get"), Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("test.exact/Get"), Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("test.Exact/Ge"), Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("test.Exact/GetAll"), Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("test.Exact"), Idempotency::kUnknown);
}

TEST(IdempotencyTest, LaterRegistrationReplacesTheLevel) {
  RegisterIdempotency("test.Replace/Put", Idempotency::kIdempotent);
  RegisterIdempotency("test.Replace/Put", Idempotency::kNoSideEffects);
  EXPECT_EQ(LookupIdempotency("test.Replace/Put"), Idempotency::kNoSideEffects);
  // Back to unknown, e.g. after loading a newer descriptor without the option.
  RegisterIdempotency("test.Replace/Put", Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("test.Replace/Put"), Idempotency::kUnknown);
  // Registering the same level again changes nothing.
  RegisterIdempotency("test.Replace/Put", Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("test.Replace/Put"), Idempotency::kUnknown);
}

TEST(IdempotencyTest, BatchRegistersEveryEntryAndTheLastEntryWins) {
  RegisterIdempotencies({{"test.Batch/Get", Idempotency::kNoSideEffects},
                         {"test.Batch/Put", Idempotency::kUnknown},
                         {"test.Batch/Put", Idempotency::kIdempotent},
                         {"test.Batch/Add", Idempotency::kUnknown}});
  EXPECT_EQ(LookupIdempotency("test.Batch/Get"), Idempotency::kNoSideEffects);
  EXPECT_EQ(LookupIdempotency("test.Batch/Put"), Idempotency::kIdempotent);
  EXPECT_EQ(LookupIdempotency("test.Batch/Add"), Idempotency::kUnknown);
  RegisterIdempotencies({});  // Nothing to do.
  EXPECT_EQ(LookupIdempotency("test.Batch/Get"), Idempotency::kNoSideEffects);
}

TEST(IdempotencyTest, RegisteredNameIsCopied) {
  std::string name = "test.Copied/Get";
  RegisterIdempotency(name, Idempotency::kNoSideEffects);
  name.assign(name.size(), 'x');
  EXPECT_EQ(LookupIdempotency("test.Copied/Get"), Idempotency::kNoSideEffects);
}

TEST(IdempotencyTest, NamesAndRepeatability) {
  EXPECT_EQ(IdempotencyName(Idempotency::kUnknown), "UNKNOWN");
  EXPECT_EQ(IdempotencyName(Idempotency::kNoSideEffects), "NO_SIDE_EFFECTS");
  EXPECT_EQ(IdempotencyName(Idempotency::kIdempotent), "IDEMPOTENT");
  EXPECT_FALSE(IsRepeatable(Idempotency::kUnknown));
  EXPECT_TRUE(IsRepeatable(Idempotency::kNoSideEffects));
  EXPECT_TRUE(IsRepeatable(Idempotency::kIdempotent));
}

// Readers look up, without locks, a name registered before they start and
// a name flipped between two levels, while a writer registers new names:
// they always see the first name's level and one of the second's two,
// never a torn or missing entry. Under TSan this is also the race check.
TEST(IdempotencyTest, ReadersSeeAConsistentTableWhileAWriterRegisters) {
  RegisterIdempotency("test.Concurrent/Stable", Idempotency::kNoSideEffects);
  RegisterIdempotency("test.Concurrent/Flip", Idempotency::kIdempotent);
  constexpr int kReaders = 4;
  constexpr int kRegistrations = 300;
  std::atomic<int> readers_started{0};
  std::atomic<bool> stop{false};
  std::atomic<int> bad_reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      bool counted = false;
      while (!stop.load(std::memory_order_acquire)) {
        if (LookupIdempotency("test.Concurrent/Stable") !=
            Idempotency::kNoSideEffects) {
          bad_reads.fetch_add(1);
        }
        Idempotency flip = LookupIdempotency("test.Concurrent/Flip");
        if (flip != Idempotency::kIdempotent &&
            flip != Idempotency::kNoSideEffects) {
          bad_reads.fetch_add(1);
        }
        if (!counted) {
          readers_started.fetch_add(1);
          counted = true;
        }
      }
    });
  }
  // Every reader is reading before the first registration.
  while (readers_started.load() < kReaders) std::this_thread::yield();
  for (int i = 0; i < kRegistrations; ++i) {
    RegisterIdempotency(absl::StrCat("test.Concurrent/New", i),
                        i % 2 == 0 ? Idempotency::kIdempotent
                                   : Idempotency::kNoSideEffects);
    RegisterIdempotency("test.Concurrent/Flip",
                        i % 2 == 0 ? Idempotency::kNoSideEffects
                                   : Idempotency::kIdempotent);
  }
  stop.store(true, std::memory_order_release);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(bad_reads.load(), 0);
  for (int i = 0; i < kRegistrations; ++i) {
    EXPECT_EQ(LookupIdempotency(absl::StrCat("test.Concurrent/New", i)),
              i % 2 == 0 ? Idempotency::kIdempotent
                         : Idempotency::kNoSideEffects)
        << i;
  }
}

// Two writers at once: neither loses the other's entries.
TEST(IdempotencyTest, ConcurrentWritersKeepEveryEntry) {
  constexpr int kPerWriter = 200;
  auto write = [](const char* prefix) {
    for (int i = 0; i < kPerWriter; ++i) {
      RegisterIdempotency(absl::StrCat(prefix, i), Idempotency::kIdempotent);
    }
  };
  std::thread a(write, "test.WriterA/M");
  std::thread b(write, "test.WriterB/M");
  a.join();
  b.join();
  for (int i = 0; i < kPerWriter; ++i) {
    EXPECT_EQ(LookupIdempotency(absl::StrCat("test.WriterA/M", i)),
              Idempotency::kIdempotent);
    EXPECT_EQ(LookupIdempotency(absl::StrCat("test.WriterB/M", i)),
              Idempotency::kIdempotent);
  }
}

}  // namespace
}  // namespace bevrpc
