#include "tools/protoc-gen-bevrpc/cpp_names.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace bevrpc::protoc_gen {
namespace {

absl::string_view StripProtoSuffix(absl::string_view proto_file) {
  absl::ConsumeSuffix(&proto_file, ".proto");
  return proto_file;
}

}  // namespace

bool IsCppKeyword(absl::string_view name) {
  static const auto* const kKeywords =
      new absl::flat_hash_set<absl::string_view>({
          "alignas",       "alignof",     "and",
          "and_eq",        "asm",         "auto",
          "bitand",        "bitor",       "bool",
          "break",         "case",        "catch",
          "char",          "char8_t",     "char16_t",
          "char32_t",      "class",       "compl",
          "concept",       "const",       "consteval",
          "constexpr",     "constinit",   "const_cast",
          "continue",      "co_await",    "co_return",
          "co_yield",      "decltype",    "default",
          "delete",        "do",          "double",
          "dynamic_cast",  "else",        "enum",
          "explicit",      "export",      "extern",
          "false",         "float",       "for",
          "friend",        "goto",        "if",
          "inline",        "int",         "long",
          "mutable",       "namespace",   "new",
          "noexcept",      "not",         "not_eq",
          "nullptr",       "operator",    "or",
          "or_eq",         "private",     "protected",
          "public",        "register",    "reinterpret_cast",
          "requires",      "return",      "short",
          "signed",        "sizeof",      "static",
          "static_assert", "static_cast", "struct",
          "switch",        "template",    "this",
          "thread_local",  "throw",       "true",
          "try",           "typedef",     "typeid",
          "typename",      "union",       "unsigned",
          "using",         "virtual",     "void",
          "volatile",      "wchar_t",     "while",
          "xor",           "xor_eq",
      });
  return kKeywords->contains(name);
}

bool IsReservedIdentifier(absl::string_view name) {
  if (absl::StrContains(name, "__")) return true;
  return name.size() >= 2 && name[0] == '_' && absl::ascii_isupper(name[1]);
}

std::string CppNamespace(absl::string_view package) {
  return absl::StrReplaceAll(package, {{".", "::"}});
}

std::string ProtobufHeaderName(absl::string_view proto_file) {
  return absl::StrCat(StripProtoSuffix(proto_file), ".pb.h");
}

std::string GeneratedHeaderName(absl::string_view proto_file) {
  return absl::StrCat(StripProtoSuffix(proto_file), ".bevrpc.h");
}

std::string GeneratedSourceName(absl::string_view proto_file) {
  return absl::StrCat(StripProtoSuffix(proto_file), ".bevrpc.cc");
}

std::string DescriptorTableName(absl::string_view proto_file) {
  // protoc's FilenameIdentifier() (compiler/cpp/helpers.cc).
  std::string name = "descriptor_table_";
  for (char c : proto_file) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      name += c;
    } else {
      absl::StrAppend(&name, "_", absl::Hex(static_cast<unsigned char>(c)));
    }
  }
  return name;
}

std::string HeaderGuard(absl::string_view proto_file) {
  std::string guard;
  for (char c : GeneratedHeaderName(proto_file)) {
    guard.push_back(absl::ascii_isalnum(c) ? absl::ascii_toupper(c) : '_');
  }
  // A macro name cannot start with a digit ("3d/x.proto").
  if (absl::ascii_isdigit(guard[0])) guard.insert(0, "BEVRPC_");
  return absl::StrCat(guard, "_");
}

std::string MethodConstantName(absl::string_view method) {
  return absl::StrCat("k", method, "Method");
}

std::string AsyncMethodName(absl::string_view method) {
  return absl::StrCat(method, "Async");
}

std::string IdempotencyConstantName(absl::string_view method) {
  return absl::StrCat("k", method, "Idempotency");
}

const std::vector<std::string>& FixedMemberNames() {
  static const auto* const kNames = new std::vector<std::string>({
      "kServiceName",
      "MethodTable",
      "descriptor",
      "Service",
      "Stub",
      "Methods",
      "channel_",
  });
  return *kNames;
}

}  // namespace bevrpc::protoc_gen
