// How protoc-gen-bevrpc names things in C++: output files, include guards,
// namespaces, and the members it generates for each service and method. The
// validator and the code printer both use these, so a name is checked exactly
// as it will be printed.
//
//   CppNamespace("acme.inventory.v1")    -> "acme::inventory::v1"
//   GeneratedHeaderName("a/b/x.proto")   -> "a/b/x.bevrpc.h"
//   MethodConstantName("GetItem")        -> "kGetItemMethod"
//   IdempotencyConstantName("GetItem")   -> "kGetItemIdempotency"
//
// For use by the plugin only (tools/protoc-gen-bevrpc). Pure functions;
// thread-safe.
#ifndef BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_CPP_NAMES_H_
#define BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_CPP_NAMES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace bevrpc::protoc_gen {

// True for C++20 keywords and alternative operator tokens ("and", "bitor"),
// which can name neither a namespace, a class nor a function.
bool IsCppKeyword(absl::string_view name);

// True for identifiers reserved to the C++ implementation: containing "__" or
// starting with "_" and an upper-case letter.
bool IsReservedIdentifier(absl::string_view name);

// "a.b.c" -> "a::b::c"; "" -> "".
std::string CppNamespace(absl::string_view package);

// "a/b/x.proto" -> "a/b/x.pb.h", "a/b/x.bevrpc.h", "a/b/x.bevrpc.cc".
std::string ProtobufHeaderName(absl::string_view proto_file);
std::string GeneratedHeaderName(absl::string_view proto_file);
std::string GeneratedSourceName(absl::string_view proto_file);

// The global variable protoc's C++ generator defines in NAME.pb.cc and
// declares in NAME.pb.h for a file's descriptor:
// "a/b/x.proto" -> "descriptor_table_a_2fb_2fx_2eproto" (each character
// other than a letter or a digit becomes "_" and its hex code).
std::string DescriptorTableName(absl::string_view proto_file);

// "a/b/x-y.proto" -> "A_B_X_Y_BEVRPC_H_".
std::string HeaderGuard(absl::string_view proto_file);

// Members generated for a method `name`.
std::string MethodConstantName(absl::string_view method);  // kNameMethod
std::string AsyncMethodName(absl::string_view method);     // NameAsync
std::string IdempotencyConstantName(
    absl::string_view method);  // kNameIdempotency

// Members every generated service class has, whatever its methods: the
// outer class's (kServiceName, MethodTable, descriptor, Service, Stub), the
// server base's (Methods, and descriptor/Service inherited from
// bevrpc::Service) and the stub's (channel_). A service or method may not
// take one of these names.
const std::vector<std::string>& FixedMemberNames();

}  // namespace bevrpc::protoc_gen

#endif  // BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_CPP_NAMES_H_
