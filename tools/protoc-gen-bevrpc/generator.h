// protoc-gen-bevrpc's code generator. For every .proto file it writes
// NAME.bevrpc.h and NAME.bevrpc.cc next to NAME.pb.h with, for each service,
// a class holding the wire names, a server base (`Service`) and a client stub
// (`Stub`); tests/codegen/golden/greeter.bevrpc.h.golden shows the result.
// A file without services gets a header that only includes NAME.pb.h, so that
// build rules can always declare both outputs.
//
//   int main(int argc, char* argv[]) {          // main.cc
//     bevrpc::protoc_gen::BevrpcGenerator generator;
//     return google::protobuf::compiler::PluginMain(argc, argv, &generator);
//   }
//
// Input it cannot turn into C++ (keywords, names that
// clash with generated ones; see validator.h) fails Generate() with an error
// naming the service and method, which protoc prints after the file name.
//
// For the plugin's main and its tests. Stateless; thread-safe.
#ifndef BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_GENERATOR_H_
#define BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_GENERATOR_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/compiler/code_generator.h"
#include "google/protobuf/descriptor.h"

namespace bevrpc::protoc_gen {

// The two files generated for one .proto file.
struct GeneratedCode {
  std::string header;  // NAME.bevrpc.h
  std::string source;  // NAME.bevrpc.cc
};

// Generates the code for `file` into `out`. Fails with INVALID_ARGUMENT,
// listing every problem one per line, if the file cannot be turned into C++.
absl::Status GenerateCode(const google::protobuf::FileDescriptor& file,
                          GeneratedCode* out);

class BevrpcGenerator final : public google::protobuf::compiler::CodeGenerator {
 public:
  // `parameter` (--bevrpc_opt) must be empty: there are no options yet.
  bool Generate(const google::protobuf::FileDescriptor* file,
                const std::string& parameter,
                google::protobuf::compiler::GeneratorContext* context,
                std::string* error) const override;

  uint64_t GetSupportedFeatures() const override {
    return FEATURE_PROTO3_OPTIONAL;
  }
};

}  // namespace bevrpc::protoc_gen

#endif  // BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_GENERATOR_H_
