// protoc-gen-bevrpc: the protoc plugin that generates bevrpc server bases and
// client stubs. Run by protoc, not by hand:
//
//   protoc --plugin=protoc-gen-bevrpc=path/to/protoc-gen-bevrpc
//       --bevrpc_out=OUT_DIR --cpp_out=OUT_DIR foo/bar.proto
//
// Bazel users call the cc_bevrpc_library macro in rpc/defs.bzl instead.
#include "google/protobuf/compiler/plugin.h"
#include "tools/protoc-gen-bevrpc/generator.h"

int main(int argc, char* argv[]) {
  bevrpc::protoc_gen::BevrpcGenerator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}
