// DescriptorSource: where the CLI learns a server's services and message
// types — the server's reflection service, or .proto files on disk
// (--proto, for servers with reflection off). Every method it loads has
// its idempotency level (the .proto's idempotency_level option) registered
// with bevrpc::RegisterIdempotency (rpc/idempotency.h), so the CLI's calls
// are retried by default exactly when a generated stub's would be.
//
//   auto source = DescriptorSource::FromReflection(channel.get(), timeout);
//   auto method = (*source)->FindMethod("bevrpc.echo.Echo/Echo");
//   std::unique_ptr<Message> req((*source)->NewMessage((*method)->input_type()));
//
// Thread-compatible (the CLI is single-threaded).
#ifndef BEVRPC_TOOLS_CLI_DESCRIPTOR_SOURCE_H_
#define BEVRPC_TOOLS_CLI_DESCRIPTOR_SOURCE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/compiler/importer.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "rpc/channel.h"

namespace bevrpc::cli {

class DescriptorSource {
 public:
  // Asks the server behind `channel` (borrowed) through reflection.
  static std::unique_ptr<DescriptorSource> FromReflection(
      Channel* channel, absl::Duration timeout);
  // Parses .proto files; `import_paths` are searched for them and their
  // imports (like protoc's -I).
  static absl::StatusOr<std::unique_ptr<DescriptorSource>> FromProtoFiles(
      const std::vector<std::string>& files,
      const std::vector<std::string>& import_paths);

  ~DescriptorSource();

  // Full service names, sorted.
  absl::StatusOr<std::vector<std::string>> ListServices();
  // NOT_FOUND lists the services that do exist.
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> FindService(
      absl::string_view name);
  // "pkg.Service/Method" or "pkg.Service.Method"; NOT_FOUND lists the
  // service's methods.
  absl::StatusOr<const google::protobuf::MethodDescriptor*> FindMethod(
      absl::string_view name);
  // A service, method, message or enum as .proto text.
  absl::StatusOr<std::string> Describe(absl::string_view symbol);

  // A new, empty message of `type` (owned by the caller).
  google::protobuf::Message* NewMessage(const google::protobuf::Descriptor* type);

 private:
  class ErrorCollector;
  DescriptorSource() = default;
  // Makes sure the file defining `symbol` is in pool_.
  absl::Status Load(absl::string_view symbol);

  Channel* channel_ = nullptr;  // Reflection mode.
  absl::Duration timeout_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  // .proto mode.
  std::unique_ptr<google::protobuf::compiler::DiskSourceTree> tree_;
  std::unique_ptr<ErrorCollector> errors_;
  std::unique_ptr<google::protobuf::compiler::Importer> importer_;
  std::vector<std::string> proto_services_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
};

}  // namespace bevrpc::cli

#endif  // BEVRPC_TOOLS_CLI_DESCRIPTOR_SOURCE_H_
