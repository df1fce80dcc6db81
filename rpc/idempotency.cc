#include "rpc/idempotency.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "transport/sync.h"

namespace bevrpc {
namespace {

using Table = absl::flat_hash_map<std::string, Idempotency>;

// The current table, replaced whole on registration. Readers load it with
// acquire and never lock; every table ever published stays alive (they
// are few and small: one per registration batch).
std::atomic<const Table*> current_table{nullptr};

Mutex& RegistryMutex() {
  static Mutex* mu = new Mutex();
  return *mu;
}

std::vector<std::unique_ptr<Table>>& AllTables() {
  static auto* tables = new std::vector<std::unique_ptr<Table>>();
  return *tables;
}

}  // namespace

absl::string_view IdempotencyName(Idempotency level) {
  switch (level) {
    case Idempotency::kNoSideEffects:
      return "NO_SIDE_EFFECTS";
    case Idempotency::kIdempotent:
      return "IDEMPOTENT";
    case Idempotency::kUnknown:
      break;
  }
  return "UNKNOWN";
}

void RegisterIdempotency(absl::string_view full_name, Idempotency level) {
  RegisterIdempotencies({{full_name, level}});
}

void RegisterIdempotencies(absl::Span<const IdempotencyEntry> entries) {
  MutexLock lock(&RegistryMutex());
  const Table* old = current_table.load(std::memory_order_acquire);
  auto unchanged = [old](const IdempotencyEntry& e) {
    if (old == nullptr) return false;
    auto it = old->find(e.full_name);
    return it != old->end() && it->second == e.level;
  };
  if (std::all_of(entries.begin(), entries.end(), unchanged)) return;
  auto next = old == nullptr ? std::make_unique<Table>()
                             : std::make_unique<Table>(*old);
  for (const IdempotencyEntry& e : entries) {
    (*next)[std::string(e.full_name)] = e.level;
  }
  current_table.store(next.get(), std::memory_order_release);
  AllTables().push_back(std::move(next));
}

const void* IdempotencyTableVersion() {
  // Tables are never freed, so a pointer is never reused for another one.
  return current_table.load(std::memory_order_acquire);
}

Idempotency LookupIdempotency(absl::string_view full_name) {
  const Table* table = current_table.load(std::memory_order_acquire);
  if (table == nullptr) return Idempotency::kUnknown;
  auto it = table->find(full_name);
  return it == table->end() ? Idempotency::kUnknown : it->second;
}

}  // namespace bevrpc
