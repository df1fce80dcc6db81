// The reflection service (bevrpc.reflection.v1.ServerReflection), built
// from the descriptors linked into the server, so it always matches what the
// server really serves.
//
//   bevrpc::Server server(options);
//   ... register services ...
//   bevrpc::builtin::AddReflection(server);   // before Start()
//
// Thread-safe once the server has started.
#ifndef BEVRPC_SERVICES_BUILTIN_REFLECTION_SERVICE_H_
#define BEVRPC_SERVICES_BUILTIN_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "rpc/server.h"

namespace bevrpc::builtin {

inline constexpr char kReflectionService[] =
    "bevrpc.reflection.v1.ServerReflection";

// Registers the reflection methods on `server` (which must outlive nothing
// else: the methods ask the server for its service list at call time).
absl::Status AddReflection(Server& server);

// The serialized FileDescriptorProtos of `file` and its transitive imports,
// imports first. Exposed for tests and the CLI.
std::vector<std::string> FileWithDependencies(
    const google::protobuf::FileDescriptor* file);

// The file that defines `symbol` in `pool` ("pkg.Svc/Method" accepted).
absl::StatusOr<const google::protobuf::FileDescriptor*> FindFileContainingSymbol(
    const google::protobuf::DescriptorPool& pool, absl::string_view symbol);

}  // namespace bevrpc::builtin

#endif  // BEVRPC_SERVICES_BUILTIN_REFLECTION_SERVICE_H_
