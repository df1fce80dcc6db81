#include "tools/protoc-gen-bevrpc/validator.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "tools/protoc-gen-bevrpc/cpp_names.h"

namespace bevrpc::protoc_gen {
namespace {

using ::google::protobuf::FileDescriptor;
using ::google::protobuf::MethodDescriptor;
using ::google::protobuf::ServiceDescriptor;

// Why `name` cannot be a C++ identifier, or "" if it can.
std::string IdentifierProblem(absl::string_view name) {
  if (IsCppKeyword(name)) {
    return absl::StrCat("\"", name, "\" is a C++ keyword");
  }
  if (IsReservedIdentifier(name)) {
    return absl::StrCat("\"", name,
                        "\" is an identifier reserved to the C++ "
                        "implementation");
  }
  return "";
}

void CheckPackage(const FileDescriptor& file,
                  std::vector<std::string>* problems) {
  if (file.package().empty()) return;
  for (absl::string_view segment : absl::StrSplit(file.package(), '.')) {
    std::string why = IdentifierProblem(segment);
    if (!why.empty()) {
      problems->push_back(absl::StrCat("package \"", file.package(), "\": ",
                                       why, " and cannot name a namespace"));
    }
  }
}

// Checks one method on its own: its name.
void CheckMethod(const MethodDescriptor& method, absl::string_view where,
                 std::vector<std::string>* problems) {
  std::string why = IdentifierProblem(method.name());
  if (!why.empty()) {
    problems->push_back(
        absl::StrCat(where, why, " and cannot name a C++ member function"));
  }
}

// Checks that the names generated for the methods of `service` (Foo,
// FooAsync, kFooMethod, kFooIdempotency) differ from each other, from the
// fixed member names and, for the outer class's members, from the service's
// own name.
void CheckGeneratedNames(const ServiceDescriptor& service,
                         std::vector<std::string>* problems) {
  // Generated name -> what it is, for the error message.
  absl::flat_hash_map<std::string, std::string> taken;
  for (const std::string& fixed : FixedMemberNames()) {
    taken[fixed] = absl::StrCat("the member ", fixed,
                                " that bevrpc generates for every service");
  }
  for (int i = 0; i < service.method_count(); ++i) {
    const std::string& m = service.method(i)->name();
    const std::string where = absl::StrCat("service \"", service.full_name(),
                                           "\", method \"", m, "\": ");
    const std::string constant = MethodConstantName(m);
    const std::string idempotency = IdempotencyConstantName(m);
    const std::pair<std::string, std::string> names[] = {
        {m, absl::StrCat("method ", m)},
        {AsyncMethodName(m),
         absl::StrCat(AsyncMethodName(m), " (the callback flavour of method ",
                      m, ")")},
        {constant,
         absl::StrCat(constant, " (the name constant of method ", m, ")")},
        {idempotency, absl::StrCat(idempotency,
                                   " (the idempotency constant of method ",
                                   m, ")")},
    };
    for (int j : {2, 3}) {  // The outer class's members.
      if (names[j].first == service.name()) {
        problems->push_back(absl::StrCat(where, names[j].second,
                                         " clashes with the service's class"));
      }
    }
    for (const auto& [name, description] : names) {
      auto [it, inserted] = taken.emplace(name, description);
      if (!inserted) {
        problems->push_back(
            absl::StrCat(where, description, " clashes with ", it->second));
      }
    }
  }
}

void CheckService(const ServiceDescriptor& service,
                  std::vector<std::string>* problems) {
  const std::string where =
      absl::StrCat("service \"", service.full_name(), "\": ");
  std::string why = IdentifierProblem(service.name());
  if (!why.empty()) {
    problems->push_back(absl::StrCat(where, why, " and cannot name a class"));
  }
  for (const std::string& fixed : FixedMemberNames()) {
    if (service.name() == fixed) {
      problems->push_back(
          absl::StrCat(where, "the name clashes with the member ", fixed,
                       " that bevrpc generates for every service"));
    }
  }
  for (int i = 0; i < service.method_count(); ++i) {
    const MethodDescriptor& method = *service.method(i);
    CheckMethod(method,
                absl::StrCat("service \"", service.full_name(), "\", method \"",
                             method.name(), "\": "),
                problems);
  }
  CheckGeneratedNames(service, problems);
}

}  // namespace

std::vector<std::string> FindProblems(const FileDescriptor& file) {
  std::vector<std::string> problems;
  if (file.service_count() == 0) return problems;
  CheckPackage(file, &problems);
  for (int i = 0; i < file.service_count(); ++i) {
    CheckService(*file.service(i), &problems);
  }
  return problems;
}

}  // namespace bevrpc::protoc_gen
