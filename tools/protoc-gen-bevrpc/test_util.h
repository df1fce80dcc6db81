// Test helpers for the generator: .proto text to FileDescriptors, and a
// GeneratorContext that keeps the generated files in memory.
//
//   ProtoFiles files;
//   const FileDescriptor* file = files.Add("a/x.proto", R"(
//       syntax = "proto3";
//       package a;
//       message M {}
//       service S { rpc Get(M) returns (M); })");
//   ASSERT_NE(file, nullptr) << files.errors();
//
//   InMemoryContext context;
//   std::string error;
//   BevrpcGenerator().GenerateAll({file}, "", &context, &error);
//   context.files()["a/x.bevrpc.h"];
//
// For tests only. Thread-compatible.
#ifndef BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_TEST_UTIL_H_
#define BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_TEST_UTIL_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/compiler/code_generator.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace bevrpc::protoc_gen {

// A DescriptorPool fed with .proto source text, comments included.
class ProtoFiles {
 public:
  // Parses `text` as the file `name` (which may import files added before)
  // and builds it. Null on a syntax or build error; see errors().
  const google::protobuf::FileDescriptor* Add(absl::string_view name,
                                              absl::string_view text);

  // The errors of the last failed Add().
  const std::string& errors() const { return errors_; }

 private:
  google::protobuf::DescriptorPool pool_;
  std::string errors_;
};

// Keeps every file the generator opens, by name.
class InMemoryContext : public google::protobuf::compiler::GeneratorContext {
 public:
  google::protobuf::io::ZeroCopyOutputStream* Open(
      const std::string& filename) override;

  std::map<std::string, std::string>& files() { return files_; }

 private:
  std::map<std::string, std::string> files_;
};

}  // namespace bevrpc::protoc_gen

#endif  // BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_TEST_UTIL_H_
