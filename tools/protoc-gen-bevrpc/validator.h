// Checks that a .proto file's services can be turned into C++ by
// protoc-gen-bevrpc, before any code is printed, so that bad input is a clear
// protoc error rather than generated code that does not compile.
//
//   std::vector<std::string> problems = FindProblems(*file);
//   if (!problems.empty()) { *error = absl::StrJoin(problems, "\n"); ... }
//
// Rejected: C++ keywords and reserved identifiers as package segments,
// service or method names; service and method names that clash with the
// names bevrpc generates (cpp_names.h). Every method shape is accepted.
//
// For use by the plugin only. Pure function; thread-safe.
#ifndef BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_VALIDATOR_H_
#define BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_VALIDATOR_H_

#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"

namespace bevrpc::protoc_gen {

// Every problem found in `file`, in the order of the file, each one sentence
// naming the package, service and method concerned. Empty if the file is
// fine. A file without services is always fine.
std::vector<std::string> FindProblems(
    const google::protobuf::FileDescriptor& file);

}  // namespace bevrpc::protoc_gen

#endif  // BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_VALIDATOR_H_
