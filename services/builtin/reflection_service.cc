#include "services/builtin/reflection_service.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.pb.h"
#include "rpc/method.h"
#include "services/builtin/reflection.pb.h"

namespace bevrpc::builtin {
namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptor;
using reflection::v1::FileByFilenameRequest;
using reflection::v1::FileContainingSymbolRequest;
using reflection::v1::FileDescriptorsResponse;
using reflection::v1::ListServicesRequest;
using reflection::v1::ListServicesResponse;

void AddWithImports(const FileDescriptor* file,
                    absl::flat_hash_set<const FileDescriptor*>* seen,
                    std::vector<std::string>* out) {
  if (!seen->insert(file).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddWithImports(file->dependency(i), seen, out);
  }
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->push_back(proto.SerializeAsString());
}

void Fill(const FileDescriptor* file, FileDescriptorsResponse* resp) {
  for (std::string& bytes : FileWithDependencies(file)) {
    resp->add_file_descriptor_proto(std::move(bytes));
  }
}

}  // namespace

std::vector<std::string> FileWithDependencies(const FileDescriptor* file) {
  absl::flat_hash_set<const FileDescriptor*> seen;
  std::vector<std::string> out;
  AddWithImports(file, &seen, &out);
  return out;
}

absl::StatusOr<const FileDescriptor*> FindFileContainingSymbol(
    const DescriptorPool& pool, absl::string_view symbol) {
  // "pkg.Svc/Method" is how bevrpc names methods on the wire.
  std::string name = absl::StrReplaceAll(symbol, {{"/", "."}});
  const FileDescriptor* file = pool.FindFileContainingSymbol(name);
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("symbol \"", symbol, "\" is not known to this server"));
  }
  return file;
}

absl::Status AddReflection(Server& server) {
  Server* s = &server;
  absl::Status status = server.RegisterMethod(
      CallbackMethod<ListServicesRequest, ListServicesResponse>(
          absl::StrCat(kReflectionService, "/ListServices"),
          [s](ServerContext&, const ListServicesRequest&,
              ListServicesResponse* resp, Completion done) {
            for (std::string& name : s->ServiceNames()) {
              resp->add_services(std::move(name));
            }
            std::move(done).Finish(absl::OkStatus());
          }));
  if (!status.ok()) return status;
  status = server.RegisterMethod(
      CallbackMethod<FileContainingSymbolRequest, FileDescriptorsResponse>(
          absl::StrCat(kReflectionService, "/FileContainingSymbol"),
          [](ServerContext&, const FileContainingSymbolRequest& req,
             FileDescriptorsResponse* resp, Completion done) {
            auto file = FindFileContainingSymbol(
                *DescriptorPool::generated_pool(), req.symbol());
            if (file.ok()) Fill(*file, resp);
            std::move(done).Finish(file.status());
          }));
  if (!status.ok()) return status;
  return server.RegisterMethod(
      CallbackMethod<FileByFilenameRequest, FileDescriptorsResponse>(
          absl::StrCat(kReflectionService, "/FileByFilename"),
          [](ServerContext&, const FileByFilenameRequest& req,
             FileDescriptorsResponse* resp, Completion done) {
            const FileDescriptor* file =
                DescriptorPool::generated_pool()->FindFileByName(
                    req.filename());
            if (file == nullptr) {
              std::move(done).Finish(absl::NotFoundError(absl::StrCat(
                  "file \"", req.filename(), "\" is not known to this server")));
              return;
            }
            Fill(file, resp);
            std::move(done).Finish(absl::OkStatus());
          }));
}

}  // namespace bevrpc::builtin
