#include "tools/protoc-gen-bevrpc/generator.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/compiler/code_generator.h"
#include "google/protobuf/compiler/cpp/names.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/printer.h"
#include "google/protobuf/io/zero_copy_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "tools/protoc-gen-bevrpc/code_format.h"
#include "tools/protoc-gen-bevrpc/cpp_names.h"
#include "tools/protoc-gen-bevrpc/validator.h"

namespace bevrpc::protoc_gen {
namespace {

namespace pb = ::google::protobuf;
using Vars = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------
// What gets printed, worked out from the descriptors first.

enum class Shape { kUnary, kServerStreaming, kClientStreaming, kBidi };

struct MethodModel {
  Shape shape = Shape::kUnary;
  std::string name;        // "SayHello"
  std::string async_name;  // "SayHelloAsync"
  std::string constant;    // "kSayHelloMethod"
  std::string full_name;   // "acme.greeter.Greeter/SayHello"
  std::string request;     // The C++ types, as generated code writes them.
  std::string response;
  std::string comment;  // The rpc's leading comment in the .proto.
  std::string idempotency_constant;  // "kSayHelloIdempotency"
  // The option idempotency_level, as ::bevrpc::Idempotency's enumerator.
  pb::MethodOptions::IdempotencyLevel idempotency =
      pb::MethodOptions::IDEMPOTENCY_UNKNOWN;
};

struct ServiceModel {
  std::string name;       // "Greeter"
  std::string full_name;  // "acme.greeter.Greeter"
  std::string comment;    // The service's leading comment in the .proto.
  // The file's descriptor table ("descriptor_table_a_2fx_2eproto"), through
  // which descriptor() finds the service.
  std::string descriptor_table;
  std::string proto_name;  // "a/x.proto"
  std::vector<MethodModel> methods;
};

struct FileModel {
  std::string proto_name;     // "a/b/x.proto"
  std::string cpp_namespace;  // "acme::greeter"; "" without a package
  std::vector<ServiceModel> services;
};

template <typename Descriptor>
std::string LeadingComment(const Descriptor& descriptor) {
  pb::SourceLocation location;
  if (!descriptor.GetSourceLocation(&location)) return "";
  return location.leading_comments;
}

// Every name declared in the class generated for `service` or its nested
// Service and Stub classes, which would hide a type of the same name.
absl::flat_hash_set<std::string> MemberNames(
    const pb::ServiceDescriptor& service) {
  absl::flat_hash_set<std::string> names(FixedMemberNames().begin(),
                                         FixedMemberNames().end());
  names.insert(service.name());
  for (int i = 0; i < service.method_count(); ++i) {
    const std::string& method = service.method(i)->name();
    names.insert({method, AsyncMethodName(method), MethodConstantName(method),
                  IdempotencyConstantName(method)});
  }
  return names;
}

// How code inside the package's namespace writes `type`: by its plain name
// when it belongs to the same package and no generated member hides it,
// else fully qualified.
std::string TypeRef(const pb::Descriptor& type, const pb::FileDescriptor& file,
                    const absl::flat_hash_set<std::string>& members) {
  if (type.file()->package() == file.package()) {
    std::string name = pb::compiler::cpp::ClassName(&type);
    if (!members.contains(name)) return name;
  }
  return pb::compiler::cpp::QualifiedClassName(&type);
}

ServiceModel ModelService(const pb::ServiceDescriptor& service) {
  const pb::FileDescriptor& file = *service.file();
  const absl::flat_hash_set<std::string> members = MemberNames(service);
  ServiceModel model;
  model.name = service.name();
  model.full_name = service.full_name();
  model.comment = LeadingComment(service);
  model.descriptor_table = DescriptorTableName(file.name());
  model.proto_name = file.name();
  for (int i = 0; i < service.method_count(); ++i) {
    const pb::MethodDescriptor& method = *service.method(i);
    MethodModel m;
    if (method.client_streaming() && method.server_streaming()) {
      m.shape = Shape::kBidi;
    } else if (method.client_streaming()) {
      m.shape = Shape::kClientStreaming;
    } else if (method.server_streaming()) {
      m.shape = Shape::kServerStreaming;
    }
    m.name = method.name();
    m.async_name = AsyncMethodName(method.name());
    m.constant = MethodConstantName(method.name());
    m.full_name = absl::StrCat(service.full_name(), "/", method.name());
    m.request = TypeRef(*method.input_type(), file, members);
    m.response = TypeRef(*method.output_type(), file, members);
    m.comment = LeadingComment(method);
    m.idempotency_constant = IdempotencyConstantName(method.name());
    m.idempotency = method.options().idempotency_level();
    model.methods.push_back(std::move(m));
  }
  return model;
}

FileModel ModelFile(const pb::FileDescriptor& file) {
  FileModel model;
  model.proto_name = file.name();
  model.cpp_namespace = CppNamespace(file.package());
  for (int i = 0; i < file.service_count(); ++i) {
    model.services.push_back(ModelService(*file.service(i)));
  }
  return model;
}

// ---------------------------------------------------------------------------
// Signatures, shared by declarations, definitions and the usage example.

// The stream handle type a streaming handler gets; "" for unary methods.
std::string HandleType(const MethodModel& m) {
  switch (m.shape) {
    case Shape::kUnary:
      return "";
    case Shape::kServerStreaming:
      return absl::StrCat("::bevrpc::ServerWriter<", m.response, ">");
    case Shape::kClientStreaming:
      return absl::StrCat("::bevrpc::ServerReader<", m.request, ">");
    case Shape::kBidi:
      return absl::StrCat("::bevrpc::ServerReaderWriter<", m.request, ", ",
                          m.response, ">");
  }
  return "";
}

// The name of a streaming handler's handle parameter.
const char* HandleName(const MethodModel& m) {
  switch (m.shape) {
    case Shape::kServerStreaming:
      return "writer";
    case Shape::kClientStreaming:
      return "reader";
    default:
      return "stream";
  }
}

bool HasRequestParam(const MethodModel& m) {
  return m.shape == Shape::kUnary || m.shape == Shape::kServerStreaming;
}
bool HasResponseParam(const MethodModel& m) {
  return m.shape == Shape::kUnary || m.shape == Shape::kClientStreaming;
}

// (ctx, [const Request& request], [handle], [Response* response]): the
// sync flavour takes the handle by reference, the callback flavour by value.
std::vector<std::string> HandlerParams(const MethodModel& m, bool named,
                                       bool handle_by_value) {
  auto name = [named](const std::string& n) {
    return named ? n : absl::StrCat("/*", n, "*/");
  };
  std::vector<std::string> params = {
      absl::StrCat("::bevrpc::ServerContext& ", name("ctx"))};
  if (HasRequestParam(m)) {
    params.push_back(absl::StrCat("const ", m.request, "& ", name("request")));
  }
  if (m.shape != Shape::kUnary) {
    params.push_back(absl::StrCat(HandleType(m), handle_by_value ? " " : "& ",
                                  name(HandleName(m))));
  }
  if (HasResponseParam(m)) {
    params.push_back(absl::StrCat(m.response, "* ", name("response")));
  }
  return params;
}

std::vector<std::string> SyncParams(const MethodModel& m, bool named = true) {
  return HandlerParams(m, named, /*handle_by_value=*/false);
}

std::vector<std::string> AsyncParams(const MethodModel& m) {
  std::vector<std::string> params =
      HandlerParams(m, /*named=*/true, /*handle_by_value=*/true);
  params.push_back("::bevrpc::Completion done");
  return params;
}

// The client's stream type of a streaming method.
std::string ClientStreamType(const MethodModel& m) {
  return absl::StrCat("::std::unique_ptr<::bevrpc::ClientStream<", m.request,
                      ", ", m.response, ">>");
}

std::vector<std::string> StreamStubParams(const MethodModel& m,
                                          bool defaults) {
  std::vector<std::string> params;
  if (m.shape == Shape::kServerStreaming) {
    params.push_back(absl::StrCat("const ", m.request, "& request"));
  }
  params.push_back(absl::StrCat("const ::bevrpc::CallOptions& options",
                                defaults ? " = {}" : ""));
  return params;
}

// "::bevrpc::MethodKind::kServerStreaming".
std::string KindConstant(const MethodModel& m) {
  switch (m.shape) {
    case Shape::kUnary:
      return "::bevrpc::MethodKind::kUnary";
    case Shape::kServerStreaming:
      return "::bevrpc::MethodKind::kServerStreaming";
    case Shape::kClientStreaming:
      return "::bevrpc::MethodKind::kClientStreaming";
    case Shape::kBidi:
      return "::bevrpc::MethodKind::kBidiStreaming";
  }
  return "";
}

// "::bevrpc::Idempotency::kNoSideEffects".
std::string IdempotencyValue(const MethodModel& m) {
  switch (m.idempotency) {
    case pb::MethodOptions::NO_SIDE_EFFECTS:
      return "::bevrpc::Idempotency::kNoSideEffects";
    case pb::MethodOptions::IDEMPOTENT:
      return "::bevrpc::Idempotency::kIdempotent";
    case pb::MethodOptions::IDEMPOTENCY_UNKNOWN:
      break;
  }
  return "::bevrpc::Idempotency::kUnknown";
}

bool IsRepeatable(const MethodModel& m) {
  return m.idempotency != pb::MethodOptions::IDEMPOTENCY_UNKNOWN;
}

std::vector<std::string> StubParams(const MethodModel& m, bool defaults) {
  return {absl::StrCat("const ", m.request, "& request"),
          absl::StrCat("const ::bevrpc::CallOptions& options",
                       defaults ? " = {}" : ""),
          absl::StrCat("::bevrpc::Metadata* trailers",
                       defaults ? " = nullptr" : ""),
          absl::StrCat("::bevrpc::Metadata* headers",
                       defaults ? " = nullptr" : "")};
}

std::vector<std::string> StubAsyncParams(const MethodModel& m, bool defaults) {
  return {absl::StrCat("const ", m.request, "& request"),
          absl::StrCat(m.response, "* response"),
          "const ::bevrpc::CallOptions& options",
          "::absl::AnyInvocable<void(::absl::Status)> done",
          absl::StrCat("::bevrpc::Metadata* trailers",
                       defaults ? " = nullptr" : ""),
          absl::StrCat("::bevrpc::Metadata* headers",
                       defaults ? " = nullptr" : "")};
}

// "a::b::c" as a namespace opening and closing, or "" for no package.
std::string OpenNamespace(const FileModel& file) {
  if (file.cpp_namespace.empty()) return "";
  return absl::StrCat("namespace ", file.cpp_namespace, " {\n\n");
}

std::string CloseNamespace(const FileModel& file) {
  if (file.cpp_namespace.empty()) return "";
  return absl::StrCat("}  // namespace ", file.cpp_namespace, "\n\n");
}

std::string GeneratedBy(const FileModel& file) {
  std::string from =
      absl::StrCat("// Generated by protoc-gen-bevrpc from ", file.proto_name);
  if (from.size() + 1 > kMaxColumns) {
    from = absl::StrCat("// Generated by protoc-gen-bevrpc from\n// ",
                        file.proto_name);
  }
  return absl::StrCat(from,
                      ".\n// DO NOT EDIT: edit the .proto file instead.\n");
}

// Code indented 5 or more, as a comment: "     x" -> "//   x".
std::string CommentedCode(absl::string_view code) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(code, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "//", line.substr(2), "\n");
  }
  return out;
}

// ---------------------------------------------------------------------------
// NAME.bevrpc.h

// The file comment: what the file holds and how to use its first service.
void PrintHeaderIntro(const FileModel& file, pb::io::Printer* p) {
  const ServiceModel& s = file.services.front();
  std::string using_example;
  if (!file.cpp_namespace.empty()) {
    using_example = absl::StrCat("//   using ", file.cpp_namespace,
                                 "::", s.name, ";\n//\n");
  }
  std::string serve_example;
  std::string call_example;
  auto unary = std::find_if(
      s.methods.begin(), s.methods.end(),
      [](const MethodModel& m) { return m.shape == Shape::kUnary; });
  if (unary != s.methods.end()) {
    const MethodModel& m = *unary;
    const std::vector<std::string> params = {
        "bevrpc::ServerContext& ctx",
        absl::StrCat("const ", m.request, "& request"),
        absl::StrCat(m.response, "* response")};
    serve_example = CommentedCode(
        WrapFunction(7, "absl::Status", m.name, params, ") override;"));
    call_example = CommentedCode(WrapAssignment(
        5, absl::StrCat("absl::StatusOr<", m.response, "> response"),
        absl::StrCat("stub.", m.name, "(request)")));
  }
  p->Print({{"generated_by", GeneratedBy(file)},
            {"service", s.name},
            {"using_example", using_example},
            {"serve_example", serve_example},
            {"call_example", call_example}},
           R"($generated_by$//
// The bevrpc services of this .proto file. For each service, a class of the
// same name holds the names calls use on the wire (kServiceName and
// k<Method>Method), a server base to subclass (Service) and a client stub
// over a bevrpc::Channel (Stub).
//
// Serving: override each method in one of two flavours (see Service below)
// and register an instance, which must outlive the server:
//
$using_example$//   class $service$Impl : public $service$::Service {
//    public:
$serve_example$//   };
//
//   $service$Impl service;
//   server.RegisterService(&service);
//
// Calling, over a channel that must outlive the stub:
//
//   $service$::Stub stub(channel.get());
$call_example$
)");
}

void PrintServerBase(const ServiceModel& s, pb::io::Printer* p) {
  p->Print(R"(
  // Server base. Subclass it and override, for each method, ONE of:
  //   - the sync flavour `Method(ctx, request, response)`: runs on the
  //     server's worker pool, may block, and returns the call's status;
  //   - the callback flavour `MethodAsync(ctx, request, response, done)`:
  //     runs on the connection's I/O loop, must not block, and finishes
  //     `done` exactly once, from any thread, possibly later.
  // By default MethodAsync runs Method on the worker pool, and Method fails
  // with UNIMPLEMENTED. `request` and `response` stay valid until `done` is
  // finished. Streaming methods get a stream handle instead of the request
  // or the response they stream (rpc/server_stream.h): a ServerWriter, a
  // ServerReader or a ServerReaderWriter, by reference in the sync flavour
  // and as a copyable handle in the callback flavour.
  //
  // Register an instance with bevrpc::Server::RegisterService(); it must
  // outlive the server. Calls run concurrently, so overrides must be
  // thread-safe.
  class Service : public ::bevrpc::Service {
   public:
    ~Service() override = default;
)");
  for (const MethodModel& m : s.methods) {
    p->PrintRaw("\n");
    p->PrintRaw(CommentBlock(4, m.comment));
    p->PrintRaw(
        WrapFunction(4, "virtual ::absl::Status", m.name, SyncParams(m), ");"));
    p->PrintRaw(
        WrapFunction(4, "virtual void", m.async_name, AsyncParams(m), ");"));
  }
  p->Print(R"(
    // bevrpc::Service: the descriptor, and every method bound to its
    // callback flavour.
    const ::google::protobuf::ServiceDescriptor* descriptor() const override;
    ::std::vector<::bevrpc::MethodDesc> Methods() override;
  };
)");
}

void PrintStub(const ServiceModel& s, pb::io::Printer* p) {
  p->Print(R"(
  // Client stub: one blocking and one asynchronous call per unary method,
  // and a ClientStream (rpc/client_stream.h) per streaming method, over a
  // channel. Thread-safe.
  //
  // `Method(request)` blocks until the call ends; never call it on one of
  // the channel's I/O threads. `MethodAsync(request, response, ...)`
  // returns at once; `done` runs exactly once, on a channel I/O thread,
  // after `response` (and `trailers` and `headers`, the server's trailing
  // and initial metadata, if not null) have been filled; all must outlive
  // the call. Channel::Cancel() with the returned handle cancels it.
  class Stub {
   public:
    // `channel` is borrowed and must outlive the stub.
    explicit Stub(::bevrpc::Channel* channel);
)");
  for (const MethodModel& m : s.methods) {
    p->PrintRaw("\n");
    p->PrintRaw(CommentBlock(4, m.comment));
    if (m.shape != Shape::kUnary) {
      // Streaming: the call runs behind the returned stream.
      p->PrintRaw(WrapFunction(4, ClientStreamType(m), m.name,
                               StreamStubParams(m, /*defaults=*/true), ");"));
      continue;
    }
    p->PrintRaw(WrapFunction(4,
                             absl::StrCat("::absl::StatusOr<", m.response, ">"),
                             m.name, StubParams(m, /*defaults=*/true), ");"));
    p->PrintRaw(WrapFunction(4, "::bevrpc::CallHandle", m.async_name,
                             StubAsyncParams(m, /*defaults=*/true), ");"));
  }
  // A service without methods never uses its channel.
  p->Print({{"unused", s.methods.empty() ? "[[maybe_unused]] " : ""}}, R"(
   private:
    $unused$::bevrpc::Channel* channel_;
  };
)");
}

// The k<Method>Idempotency constants and what they mean; "" for a service
// without methods.
std::string IdempotencyConstants(const ServiceModel& s) {
  if (s.methods.empty()) return "";
  std::string out = R"(
  // Whether a call may be repeated: each method's .proto option
  // idempotency_level (`option idempotency_level = NO_SIDE_EFFECTS;` or
  // `IDEMPOTENT;`), kUnknown without one (rpc/idempotency.h). This file's
  // .bevrpc.cc registers every level but kUnknown when the program starts,
  // and channels retry failed calls of repeatable methods by default
  // (docs/resilience.md, "Retries"). Retries apply to unary calls only: a
  // streaming method's level is recorded but not acted on.
)";
  for (const MethodModel& m : s.methods) {
    out += WrapAssignment(
        2,
        absl::StrCat("static constexpr ::bevrpc::Idempotency ",
                     m.idempotency_constant),
        IdempotencyValue(m));
  }
  return out;
}

void PrintServiceClass(const ServiceModel& s, pb::io::Printer* p) {
  std::string constants;
  for (const MethodModel& m : s.methods) {
    constants += WrapAssignment(
        2, absl::StrCat("static constexpr char ", m.constant, "[]"),
        absl::StrCat("\"", m.full_name, "\""));
  }
  constants += IdempotencyConstants(s);
  p->Print({{"comment", CommentBlock(0, s.comment)},
            {"name", s.name},
            {"service_name",
             WrapAssignment(2, "static constexpr char kServiceName[]",
                            absl::StrCat("\"", s.full_name, "\""))},
            {"constants", constants}},
           R"($comment$class $name$ final {
 public:
  $name$() = delete;  // Only a scope for what follows.

  // Names on the wire: "package.Service" and "package.Service/Method".
$service_name$$constants$
  // The method table: each method's full name, request and response
  // prototypes, kind and idempotency. The handlers are unset;
  // Service::Methods() binds them.
  static ::std::vector<::bevrpc::MethodDesc> MethodTable();

  // The service's descriptor, for reflection.
  static const ::google::protobuf::ServiceDescriptor* descriptor();
)");
  PrintServerBase(s, p);
  PrintStub(s, p);
  p->Print("};\n\n");
}

std::string HeaderIncludes(const FileModel& file) {
  std::vector<std::string> includes = {
      "absl/functional/any_invocable.h",
      "absl/status/status.h",
      "absl/status/statusor.h",
      "google/protobuf/descriptor.h",
      "rpc/call_options.h",
      "rpc/channel.h",
      "rpc/client_stream.h",
      "rpc/idempotency.h",
      "rpc/method.h",
      "rpc/server_context.h",
      "rpc/server_stream.h",
      "rpc/service.h",
      ProtobufHeaderName(file.proto_name),
  };
  std::sort(includes.begin(), includes.end());
  std::string out = "#include <memory>\n#include <vector>\n\n";
  for (const std::string& include : includes) {
    absl::StrAppend(&out, "#include \"", include, "\"\n");
  }
  return out;
}

void PrintHeader(const FileModel& file, pb::io::Printer* p) {
  const Vars vars = {{"guard", HeaderGuard(file.proto_name)},
                     {"generated_by", GeneratedBy(file)},
                     {"pb_h", ProtobufHeaderName(file.proto_name)},
                     {"includes", HeaderIncludes(file)},
                     {"open_namespace", OpenNamespace(file)},
                     {"close_namespace", CloseNamespace(file)}};
  if (file.services.empty()) {
    p->Print(vars, R"($generated_by$//
// The .proto file defines no services: this header only includes its
// messages.

#ifndef $guard$
#define $guard$

#include "$pb_h$"

#endif  // $guard$
)");
    return;
  }
  PrintHeaderIntro(file, p);
  p->Print(vars,
           "#ifndef $guard$\n#define $guard$\n\n$includes$\n$open_namespace$");
  for (const ServiceModel& s : file.services) PrintServiceClass(s, p);
  p->Print(vars, "$close_namespace$#endif  // $guard$\n");
}

// ---------------------------------------------------------------------------
// NAME.bevrpc.cc

constexpr char kDescriptorType[] =
    "const ::google::protobuf::ServiceDescriptor*";

void PrintMethodTable(const ServiceModel& s, pb::io::Printer* p) {
  p->PrintRaw(WrapFunction(0, "::std::vector<::bevrpc::MethodDesc>",
                           absl::StrCat(s.name, "::MethodTable"), {}, ") {"));
  p->Print({{"count", absl::StrCat(s.methods.size())}},
           "  ::std::vector<::bevrpc::MethodDesc> methods($count$);\n");
  for (size_t i = 0; i < s.methods.size(); ++i) {
    const MethodModel& m = s.methods[i];
    const std::string entry = absl::StrCat("methods[", i, "].");
    p->PrintRaw(absl::StrCat(
        WrapAssignment(2, entry + "full_name", m.constant),
        WrapAssignment(2, entry + "request_prototype",
                       absl::StrCat("&", m.request, "::default_instance()")),
        WrapAssignment(2, entry + "response_prototype",
                       absl::StrCat("&", m.response, "::default_instance()"))));
    if (m.shape != Shape::kUnary) {
      p->PrintRaw(WrapAssignment(2, entry + "kind", KindConstant(m)));
    }
    if (IsRepeatable(m)) {
      p->PrintRaw(
          WrapAssignment(2, entry + "idempotency", m.idempotency_constant));
    }
  }
  p->Print("  return methods;\n}\n\n");
}

void PrintDescriptor(const ServiceModel& s, pb::io::Printer* p) {
  p->PrintRaw(WrapFunction(0, kDescriptorType,
                           absl::StrCat(s.name, "::descriptor"), {}, ") {"));
  // Through the file's descriptor table, whatever the file contains: a
  // static binary links a .pb.o only if something uses a symbol defined in
  // it, and a file with only services has no message class to use.
  p->Print(R"(  // Using the file's descriptor table (defined in its .pb.cc) links that
  // file's descriptor into every binary that serves or calls the service,
  // even when the file defines no message, so reflection can find it.
  static const ::google::protobuf::ServiceDescriptor* const service = [] {
)");
  p->PrintRaw(WrapCall(4, "::google::protobuf::internal::AssignDescriptors(",
                       {absl::StrCat("&::", s.descriptor_table)}, ");",
                       Packing::kBinPack));
  p->Print(R"(    const ::google::protobuf::FileDescriptor* file =
        ::google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
)");
  p->PrintRaw(WrapCall(12, "", {absl::StrCat("\"", s.proto_name, "\"")}, ");",
                       Packing::kBinPack));
  p->Print({{"name", s.name}},
           "    return file == nullptr ? nullptr\n"
           "                           : file->FindServiceByName(\"$name$\");\n"
           "  }();\n");
  p->Print("  return service;\n}\n");
}

// The defaults: the sync flavour fails, the callback flavour runs the sync
// flavour on the worker pool.
void PrintDefaultFlavours(const ServiceModel& s, const MethodModel& m,
                          pb::io::Printer* p) {
  const std::string scope = absl::StrCat(s.name, "::Service::");
  p->PrintRaw("\n");
  p->PrintRaw(WrapFunction(0, "::absl::Status", scope + m.name,
                           SyncParams(m, /*named=*/false), ") {"));
  p->Print("  return ::absl::UnimplementedError(\n");
  p->PrintRaw(WrapCall(6, "::absl::StrCat(",
                       {"\"method \"", m.constant, "\" not implemented\""},
                       "));", Packing::kBinPack));
  p->Print("}\n\n");
  p->PrintRaw(
      WrapFunction(0, "void", scope + m.async_name, AsyncParams(m), ") {"));
  std::vector<std::string> captures = {"this", "&ctx"};
  std::vector<std::string> args = {"ctx"};
  if (HasRequestParam(m)) {
    captures.push_back("&request");
    args.push_back("request");
  }
  if (m.shape != Shape::kUnary) {
    captures.push_back(HandleName(m));  // A handle: copied.
    args.push_back(HandleName(m));
  }
  if (HasResponseParam(m)) {
    captures.push_back("response");
    args.push_back("response");
  }
  captures.push_back("done = ::std::move(done)");
  p->Print(
      "  // The sync flavour may block: run it on the server's worker pool.\n"
      "  ctx.RunOnWorkerPool(\n");
  p->PrintRaw(WrapCall(6, "[", captures, "]() mutable {", Packing::kBinPack));
  p->PrintRaw(
      WrapCall(8, absl::StrCat("::std::move(done).Finish(this->", m.name, "("),
               args, "));", Packing::kBinPack));
  p->Print("      });\n}\n");
}

// Service's overrides of bevrpc::Service.
void PrintServiceOverrides(const ServiceModel& s, pb::io::Printer* p) {
  const std::string scope = absl::StrCat(s.name, "::Service::");
  p->PrintRaw("\n");
  p->PrintRaw(
      WrapFunction(0, kDescriptorType, scope + "descriptor", {}, ") const {"));
  p->Print({{"name", s.name}}, "  return $name$::descriptor();\n}\n\n");
  p->PrintRaw(WrapFunction(0, "::std::vector<::bevrpc::MethodDesc>",
                           scope + "Methods", {}, ") {"));
  p->Print(
      R"(  // Every method runs on the I/O loop (ExecutionMode::kInline, the default)
  // through its callback flavour.
  ::std::vector<::bevrpc::MethodDesc> methods = MethodTable();
)");
  for (size_t i = 0; i < s.methods.size(); ++i) {
    const MethodModel& m = s.methods[i];
    p->Print(
        {{"i", absl::StrCat(i)}},
        R"(  methods[$i$].handler = ::std::make_shared<::bevrpc::UntypedHandler>(
      [this](::bevrpc::ServerContext& ctx,
             const ::google::protobuf::Message& request,
             ::google::protobuf::Message* response,
             ::bevrpc::Completion done) {
)");
    std::vector<std::string> args = {"ctx"};
    if (HasRequestParam(m)) {
      args.push_back(absl::StrCat("static_cast<const ", m.request, "&>(request)"));
    }
    if (m.shape != Shape::kUnary) {
      // Converts to the method's typed handle.
      args.push_back("::bevrpc::ServerStream(ctx)");
    }
    if (HasResponseParam(m)) {
      args.push_back(absl::StrCat("static_cast<", m.response, "*>(response)"));
    }
    args.push_back("::std::move(done)");
    p->PrintRaw(WrapCall(8, absl::StrCat("this->", m.async_name, "("), args,
                         ");", Packing::kBinPack));
    p->Print("      });\n");
  }
  p->Print("  return methods;\n}\n");
}

void PrintStubMethods(const ServiceModel& s, const MethodModel& m,
                      pb::io::Printer* p) {
  const std::string scope = absl::StrCat(s.name, "::Stub::");
  p->PrintRaw("\n");
  if (m.shape != Shape::kUnary) {
    p->PrintRaw(WrapFunction(0, ClientStreamType(m), scope + m.name,
                             StreamStubParams(m, /*defaults=*/false), ") {"));
    p->PrintRaw(WrapCall(
        2,
        absl::StrCat("return ::bevrpc::ClientStream<", m.request, ", ",
                     m.response, ">::Open("),
        {"*channel_", m.constant, KindConstant(m),
         m.shape == Shape::kServerStreaming ? "&request" : "nullptr",
         "options"},
        ");", Packing::kBinPack));
    p->Print("}\n");
    return;
  }
  p->PrintRaw(
      WrapFunction(0, absl::StrCat("::absl::StatusOr<", m.response, ">"),
                   scope + m.name, StubParams(m, /*defaults=*/false), ") {"));
  p->Print({{"response", m.response}}, "  $response$ response;\n");
  const std::vector<std::string> call_args = {
      m.constant, "request", "&response", "options", "trailers", "headers"};
  std::string call =
      WrapCall(2, "::absl::Status status = channel_->Call(", call_args, ");");
  if (std::count(call.begin(), call.end(), '\n') > 1) {
    call = absl::StrCat(
        "  ::absl::Status status =\n",
        WrapCall(6, "channel_->Call(", call_args, ");", Packing::kBinPack));
  }
  p->PrintRaw(call);
  p->Print("  if (!status.ok()) return status;\n  return response;\n}\n\n");
  p->PrintRaw(WrapFunction(0, "::bevrpc::CallHandle", scope + m.async_name,
                           StubAsyncParams(m, /*defaults=*/false), ") {"));
  p->PrintRaw(WrapCall(2, "return channel_->CallAsync(",
                       {m.constant, "request", "response", "options",
                        "::std::move(done)", "trailers", "headers"},
                       ");", Packing::kBinPack));
  p->Print("}\n");
}

void PrintServiceDefinitions(const ServiceModel& s, pb::io::Printer* p) {
  std::string rule = absl::StrCat("// ", s.name, " ");
  rule.resize(std::max<size_t>(kMaxColumns - 1, rule.size() + 3), '-');
  p->PrintRaw(absl::StrCat(rule, "\n\n"));
  PrintMethodTable(s, p);
  PrintDescriptor(s, p);
  for (const MethodModel& m : s.methods) PrintDefaultFlavours(s, m, p);
  PrintServiceOverrides(s, p);

  std::string constructor = absl::StrCat(
      s.name,
      "::Stub::Stub(::bevrpc::Channel* channel) : channel_(channel) {}");
  if (constructor.size() > kMaxColumns) {
    constructor = absl::StrCat(s.name,
                               "::Stub::Stub(::bevrpc::Channel* channel)\n"
                               "    : channel_(channel) {}");
  }
  p->PrintRaw(absl::StrCat("\n", constructor, "\n"));
  for (const MethodModel& m : s.methods) PrintStubMethods(s, m, p);
}

// The static initializer that registers the file's repeatable methods, or
// nothing when no method declares a level.
void PrintIdempotencyRegistration(const FileModel& file, pb::io::Printer* p) {
  std::string entries;
  for (const ServiceModel& s : file.services) {
    for (const MethodModel& m : s.methods) {
      if (!IsRepeatable(m)) continue;
      entries += WrapCall(6, "{",
                          {absl::StrCat(s.name, "::", m.constant),
                           absl::StrCat(s.name, "::", m.idempotency_constant)},
                          "},");
    }
  }
  if (entries.empty()) return;
  p->Print({{"entries", entries}}, R"(
// Registers, before main() runs, the idempotency level of every method that
// declares one (rpc/idempotency.h), so that channels know which calls they
// may repeat. It sits in the file that defines the stubs and method tables,
// so it is linked whenever they are used.
namespace {

[[maybe_unused]] const bool idempotency_registered = [] {
  ::bevrpc::RegisterIdempotencies({
$entries$  });
  return true;
}();

}  // namespace
)");
}

void PrintSource(const FileModel& file, pb::io::Printer* p) {
  const Vars vars = {{"generated_by", GeneratedBy(file)},
                     {"header", GeneratedHeaderName(file.proto_name)},
                     {"open_namespace", OpenNamespace(file)}};
  if (file.services.empty()) {
    p->Print(vars, R"($generated_by$//
// The .proto file defines no services: nothing to define.

#include "$header$"
)");
    return;
  }
  p->Print(vars, R"($generated_by$#include "$header$"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

$open_namespace$)");
  for (size_t i = 0; i < file.services.size(); ++i) {
    if (i > 0) p->Print("\n");
    PrintServiceDefinitions(file.services[i], p);
  }
  PrintIdempotencyRegistration(file, p);
  if (!file.cpp_namespace.empty()) {
    p->Print({{"namespace", file.cpp_namespace}},
             "\n}  // namespace $namespace$\n");
  }
}

// Runs `print` into a string.
template <typename PrintFn>
std::string PrintToString(const FileModel& file, PrintFn print) {
  std::string out;
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::Printer printer(&stream, '$');
    print(file, &printer);
  }
  return out;
}

// Writes `content` to the output file `name`.
void WriteFile(pb::compiler::GeneratorContext* context, const std::string& name,
               const std::string& content) {
  std::unique_ptr<pb::io::ZeroCopyOutputStream> stream(context->Open(name));
  pb::io::Printer printer(stream.get(), '$');
  printer.PrintRaw(content);
}

}  // namespace

absl::Status GenerateCode(const pb::FileDescriptor& file, GeneratedCode* out) {
  std::vector<std::string> problems = FindProblems(file);
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  }
  const FileModel model = ModelFile(file);
  out->header = PrintToString(model, PrintHeader);
  out->source = PrintToString(model, PrintSource);
  return absl::OkStatus();
}

bool BevrpcGenerator::Generate(const pb::FileDescriptor* file,
                               const std::string& parameter,
                               pb::compiler::GeneratorContext* context,
                               std::string* error) const {
  if (!parameter.empty()) {
    *error = absl::StrCat("unknown --bevrpc_opt \"", parameter,
                          "\": protoc-gen-bevrpc takes no options");
    return false;
  }
  GeneratedCode code;
  absl::Status status = GenerateCode(*file, &code);
  if (!status.ok()) {
    *error = std::string(status.message());
    return false;
  }
  WriteFile(context, GeneratedHeaderName(file->name()), code.header);
  WriteFile(context, GeneratedSourceName(file->name()), code.source);
  return true;
}

}  // namespace bevrpc::protoc_gen
