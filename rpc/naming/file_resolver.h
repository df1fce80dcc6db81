// file:///ABS/PATH: one endpoint per line, reloaded when the file changes.
//
//   # comments and blank lines are ignored
//   127.0.0.1:50051 weight=2 zone=a id=kv-0 version=1.4
//   [::1]:50052
//
// Each line is HOST:PORT followed by optional key=value fields: weight (a
// positive integer, default 1), zone, id (a stable identity for
// ring_hash), version. Use numeric addresses: a host name is resolved with
// getaddrinfo on the channel's loop, which blocks it. A line that does not
// parse is skipped and reported (with its line number) on stderr; the
// other lines still count.
//
// Change detection: the file is stat()ed every
// ResolverOptions::file_poll_interval; a new inode, size or mtime means a
// re-read. Writers should replace it atomically (write a temporary file,
// rename it over). A file that is missing or
// unreadable before any list was read is an error for the listener
// (reported once per distinct error, polling goes on); after a good list,
// the last list is kept.
//
// Threading: as naming::Resolver.
#ifndef BEVRPC_RPC_NAMING_FILE_RESOLVER_H_
#define BEVRPC_RPC_NAMING_FILE_RESOLVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/naming/resolver.h"

namespace bevrpc::naming {

struct ParsedEndpointFile {
  EndpointList endpoints;  // Deduplicated by address, in file order.
  std::vector<std::string> errors;  // "line N: why", one per bad line.
};

// Parses the text of an endpoints file (resolving host names).
ParsedEndpointFile ParseEndpointFile(absl::string_view text);

// For Target::Scheme::kFile.
absl::StatusOr<std::unique_ptr<Resolver>> NewFileResolver(
    const Target& target, transport::EventLoop* loop,
    const ResolverOptions& options);

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_FILE_RESOLVER_H_
