// Which calls may be repeated: a method's idempotency level, as its .proto
// declares it (`option idempotency_level = IDEMPOTENT;` or
// `NO_SIDE_EFFECTS`, descriptor.proto's MethodOptions), kept in one
// process-wide table that channels consult to decide whether a failed call
// may be retried by default (docs/resilience.md, "Retries").
//
// Generated code (tools/protoc-gen-bevrpc) registers every method of a
// .proto file when its program starts; the CLI registers the methods it
// loads at run time (server reflection, descriptor sets). Hand-written
// clients may register their own:
//
//   bevrpc::RegisterIdempotency("kv.Kv/Get", bevrpc::Idempotency::kNoSideEffects);
//
// or several at once (one table copy for the batch, which is how generated
// code registers a file's methods):
//
//   bevrpc::RegisterIdempotencies(
//       {{"kv.Kv/Get", bevrpc::Idempotency::kNoSideEffects},
//        {"kv.Kv/Delete", bevrpc::Idempotency::kIdempotent}});
//
// Registration is safe during static initialization: the table pointer is
// constant-initialized and the lock is created on first use.
//
// Threading: every function is thread-safe. Lookups take no lock and
// allocate nothing; registration (rare: start-up, loading descriptors)
// copies the table and keeps the old copies, so a reader never waits.
#ifndef BEVRPC_RPC_IDEMPOTENCY_H_
#define BEVRPC_RPC_IDEMPOTENCY_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace bevrpc {

// descriptor.proto's MethodOptions.IdempotencyLevel, in the same order.
enum class Idempotency {
  kUnknown = 0,        // May have side effects: never repeated once sent.
  kNoSideEffects = 1,  // A read.
  kIdempotent = 2,     // Repeating it has the effect of doing it once.
};

// "UNKNOWN", "NO_SIDE_EFFECTS", "IDEMPOTENT".
absl::string_view IdempotencyName(Idempotency level);

// Records `level` for "package.Service/Method"; a later registration of
// the same name replaces it.
void RegisterIdempotency(absl::string_view full_name, Idempotency level);

struct IdempotencyEntry {
  absl::string_view full_name;  // "package.Service/Method"
  Idempotency level;
};

// Records every entry at once, publishing one new table for the batch (each
// publication copies the table, so register a file's or a service's
// methods together rather than one call per method). A later entry for
// the same name replaces an earlier one.
void RegisterIdempotencies(absl::Span<const IdempotencyEntry> entries);

// The level registered for `full_name`; kUnknown when none was.
Idempotency LookupIdempotency(absl::string_view full_name);

// Changes whenever the table does (never reused): lets callers cache
// lookups. Lock-free.
const void* IdempotencyTableVersion();

// True for kNoSideEffects and kIdempotent.
inline bool IsRepeatable(Idempotency level) {
  return level != Idempotency::kUnknown;
}

}  // namespace bevrpc

#endif  // BEVRPC_RPC_IDEMPOTENCY_H_
