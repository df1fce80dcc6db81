#include "tools/cli/descriptor_source.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.pb.h"
#include "rpc/idempotency.h"
#include "services/builtin/reflection.pb.h"

namespace bevrpc::cli {

namespace rv1 = ::bevrpc::reflection::v1;

namespace {

Idempotency LevelOf(const google::protobuf::MethodDescriptor& method) {
  switch (method.options().idempotency_level()) {
    case google::protobuf::MethodOptions::NO_SIDE_EFFECTS:
      return Idempotency::kNoSideEffects;
    case google::protobuf::MethodOptions::IDEMPOTENT:
      return Idempotency::kIdempotent;
    default:
      return Idempotency::kUnknown;
  }
}

// Registers the idempotency level of every method `file` defines
// (rpc/idempotency.h), kUnknown included, so that the CLI's calls are
// retried as a generated stub's would be, by what this server's
// descriptors say.
void RegisterIdempotencyLevels(const google::protobuf::FileDescriptor& file) {
  std::vector<std::string> names;  // Backs the entries' names.
  std::vector<Idempotency> levels;
  for (int i = 0; i < file.service_count(); ++i) {
    const google::protobuf::ServiceDescriptor& service = *file.service(i);
    for (int j = 0; j < service.method_count(); ++j) {
      names.push_back(
          absl::StrCat(service.full_name(), "/", service.method(j)->name()));
      levels.push_back(LevelOf(*service.method(j)));
    }
  }
  std::vector<IdempotencyEntry> entries;
  for (size_t i = 0; i < names.size(); ++i) {
    entries.push_back({names[i], levels[i]});
  }
  RegisterIdempotencies(entries);
}

// The same for `file` and everything it imports, transitively.
void RegisterIdempotencyLevelsWithImports(
    const google::protobuf::FileDescriptor& file,
    absl::flat_hash_set<const google::protobuf::FileDescriptor*>* seen) {
  if (!seen->insert(&file).second) return;
  RegisterIdempotencyLevels(file);
  for (int i = 0; i < file.dependency_count(); ++i) {
    RegisterIdempotencyLevelsWithImports(*file.dependency(i), seen);
  }
}

}  // namespace

class DescriptorSource::ErrorCollector
    : public google::protobuf::compiler::MultiFileErrorCollector {
 public:
  void AddError(const std::string& filename, int line, int column,
                const std::string& message) override {
    if (!text.empty()) text += "; ";
    if (line < 0) {  // Not about a position: e.g. the file does not exist.
      absl::StrAppend(&text, filename, ": ", message);
    } else {
      absl::StrAppend(&text, filename, ":", line + 1, ":", column + 1, ": ",
                      message);
    }
  }
  std::string text;
};

DescriptorSource::~DescriptorSource() = default;

std::unique_ptr<DescriptorSource> DescriptorSource::FromReflection(
    Channel* channel, absl::Duration timeout) {
  std::unique_ptr<DescriptorSource> s(new DescriptorSource());
  s->channel_ = channel;
  s->timeout_ = timeout;
  s->pool_ = std::make_unique<google::protobuf::DescriptorPool>();
  s->factory_ =
      std::make_unique<google::protobuf::DynamicMessageFactory>(s->pool_.get());
  return s;
}

absl::StatusOr<std::unique_ptr<DescriptorSource>>
DescriptorSource::FromProtoFiles(const std::vector<std::string>& files,
                                 const std::vector<std::string>& import_paths) {
  std::unique_ptr<DescriptorSource> s(new DescriptorSource());
  s->tree_ = std::make_unique<google::protobuf::compiler::DiskSourceTree>();
  for (const std::string& dir : import_paths) s->tree_->MapPath("", dir);
  if (import_paths.empty()) s->tree_->MapPath("", ".");
  s->errors_ = std::make_unique<ErrorCollector>();
  s->importer_ = std::make_unique<google::protobuf::compiler::Importer>(
      s->tree_.get(), s->errors_.get());
  absl::flat_hash_set<const google::protobuf::FileDescriptor*> registered;
  for (const std::string& file : files) {
    const google::protobuf::FileDescriptor* fd = s->importer_->Import(file);
    if (fd == nullptr) {
      std::string paths = import_paths.empty()
                              ? std::string(".")
                              : absl::StrJoin(import_paths, ", ");
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load ", file, " (import paths: ", paths, "): ",
          s->errors_->text.empty() ? "not found" : s->errors_->text));
    }
    for (int i = 0; i < fd->service_count(); ++i) {
      s->proto_services_.push_back(fd->service(i)->full_name());
    }
    RegisterIdempotencyLevelsWithImports(*fd, &registered);
  }
  std::sort(s->proto_services_.begin(), s->proto_services_.end());
  s->factory_ = std::make_unique<google::protobuf::DynamicMessageFactory>(
      s->importer_->pool());
  return s;
}

absl::StatusOr<std::vector<std::string>> DescriptorSource::ListServices() {
  if (channel_ == nullptr) return proto_services_;
  rv1::ListServicesResponse resp;
  CallOptions options;
  options.timeout = timeout_;
  absl::Status s = channel_->Call(
      "bevrpc.reflection.v1.ServerReflection/ListServices",
      rv1::ListServicesRequest(), &resp, options);
  if (s.code() == absl::StatusCode::kUnimplemented) {
    return absl::UnimplementedError(
        "the server has reflection turned off; pass --proto FILE [-I DIR]");
  }
  if (!s.ok()) return s;
  return std::vector<std::string>(resp.services().begin(),
                                  resp.services().end());
}

absl::Status DescriptorSource::Load(absl::string_view symbol) {
  if (channel_ == nullptr) return absl::OkStatus();
  std::string dotted = absl::StrReplaceAll(symbol, {{"/", "."}});
  if (pool_->FindFileContainingSymbol(dotted) != nullptr) {
    return absl::OkStatus();
  }
  rv1::FileContainingSymbolRequest req;
  req.set_symbol(dotted);
  rv1::FileDescriptorsResponse resp;
  CallOptions options;
  options.timeout = timeout_;
  absl::Status s = channel_->Call(
      "bevrpc.reflection.v1.ServerReflection/FileContainingSymbol", req, &resp,
      options);
  if (s.code() == absl::StatusCode::kUnimplemented) {
    return absl::UnimplementedError(
        "the server has reflection turned off; pass --proto FILE [-I DIR]");
  }
  if (!s.ok()) return s;
  for (const std::string& bytes : resp.file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto proto;
    if (!proto.ParseFromString(bytes)) {
      return absl::DataLossError("reflection sent a malformed file descriptor");
    }
    if (pool_->FindFileByName(proto.name()) != nullptr) continue;
    const google::protobuf::FileDescriptor* file = pool_->BuildFile(proto);
    if (file == nullptr) {
      return absl::DataLossError(absl::StrCat(
          "reflection sent ", proto.name(), ", which does not build"));
    }
    RegisterIdempotencyLevels(*file);
  }
  return absl::OkStatus();
}

absl::StatusOr<const google::protobuf::ServiceDescriptor*>
DescriptorSource::FindService(absl::string_view name) {
  const google::protobuf::DescriptorPool* pool =
      channel_ != nullptr ? pool_.get() : importer_->pool();
  absl::StatusOr<std::vector<std::string>> services = ListServices();
  if (!services.ok()) return services.status();
  if (std::find(services->begin(), services->end(), name) == services->end()) {
    return absl::NotFoundError(
        absl::StrCat("unknown service \"", name, "\"; the server has: ",
                     absl::StrJoin(*services, ", ")));
  }
  absl::Status s = Load(name);
  if (!s.ok()) return s;
  const auto* service = pool->FindServiceByName(std::string(name));
  if (service == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no definition found for service \"", name, "\""));
  }
  return service;
}

absl::StatusOr<const google::protobuf::MethodDescriptor*>
DescriptorSource::FindMethod(absl::string_view name) {
  std::string full = absl::StrReplaceAll(name, {{"/", "."}});
  size_t dot = full.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == full.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("method \"", name, "\" is not package.Service/Method"));
  }
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> service =
      FindService(full.substr(0, dot));
  if (!service.ok()) return service.status();
  const auto* method = (*service)->FindMethodByName(full.substr(dot + 1));
  if (method == nullptr) {
    std::vector<std::string> names;
    for (int i = 0; i < (*service)->method_count(); ++i) {
      names.push_back((*service)->method(i)->name());
    }
    return absl::NotFoundError(absl::StrCat(
        "unknown method \"", full.substr(dot + 1), "\" of service ",
        (*service)->full_name(), "; it has: ", absl::StrJoin(names, ", ")));
  }
  return method;
}

absl::StatusOr<std::string> DescriptorSource::Describe(absl::string_view symbol) {
  absl::Status s = Load(symbol);
  if (!s.ok()) return s;
  const google::protobuf::DescriptorPool* pool =
      channel_ != nullptr ? pool_.get() : importer_->pool();
  std::string name = absl::StrReplaceAll(symbol, {{"/", "."}});
  if (const auto* d = pool->FindServiceByName(name)) return d->DebugString();
  if (const auto* d = pool->FindMethodByName(name)) {
    return absl::StrCat("// in service ", d->service()->full_name(), "\n",
                        d->DebugString());
  }
  if (const auto* d = pool->FindMessageTypeByName(name)) return d->DebugString();
  if (const auto* d = pool->FindEnumTypeByName(name)) return d->DebugString();
  return absl::NotFoundError(
      absl::StrCat("symbol \"", symbol, "\" is not known to the server"));
}

google::protobuf::Message* DescriptorSource::NewMessage(
    const google::protobuf::Descriptor* type) {
  return factory_->GetPrototype(type)->New();
}

}  // namespace bevrpc::cli
