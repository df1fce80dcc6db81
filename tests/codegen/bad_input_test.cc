// .proto input that protoc-gen-bevrpc must refuse with a clear error, never
// with C++ that does not compile: C++ keywords, and names that clash with
// the names it generates (and streaming methods, which it must accept).
// Errors name the file (protoc's
// "file.proto: " prefix, added by CodeGenerator::GenerateAll), the service
// and the method, and nothing is written.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "tools/protoc-gen-bevrpc/generator.h"
#include "tools/protoc-gen-bevrpc/test_util.h"

namespace bevrpc::protoc_gen {
namespace {

using ::google::protobuf::FileDescriptor;
using ::testing::HasSubstr;

class BadInputTest : public ::testing::Test {
 protected:
  // Runs the generator over `text` as the file `name`, in a pool of its own,
  // the way protoc does, and returns its error; fails the test if it
  // succeeds or writes anything.
  static std::string ErrorFor(const std::string& text,
                              const std::string& name = "bad/x.proto") {
    ProtoFiles files;
    const FileDescriptor* file = files.Add(name, text);
    EXPECT_NE(file, nullptr) << "not valid protobuf: " << files.errors();
    if (file == nullptr) return "";
    InMemoryContext context;
    std::string error;
    EXPECT_FALSE(BevrpcGenerator().GenerateAll({file}, "", &context, &error));
    EXPECT_TRUE(context.files().empty());
    return error;
  }
};

constexpr char kHeader[] = R"(
    syntax = "proto3";
    package acme.v1;
    message M {}
)";

TEST_F(BadInputTest, StreamingMethodsOfEveryShapeAreAccepted) {
  ProtoFiles files;
  const FileDescriptor* file = files.Add("ok/x.proto", std::string(kHeader) + R"(
      service Feed {
        rpc Watch(M) returns (stream M);
        rpc Upload(stream M) returns (M);
        rpc Chat(stream M) returns (stream M);
      })");
  ASSERT_NE(file, nullptr);
  GeneratedCode code;
  absl::Status s = GenerateCode(*file, &code);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(code.header, HasSubstr("::bevrpc::ServerWriter<M>& writer"));
  EXPECT_THAT(code.header, HasSubstr("::bevrpc::ServerReader<M>& reader"));
  EXPECT_THAT(code.header,
              HasSubstr("::bevrpc::ServerReaderWriter<M, M>& stream"));
}

TEST_F(BadInputTest, KeywordMethodName) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service Store { rpc delete(M) returns (M); })"),
            "bad/x.proto: service \"acme.v1.Store\", method \"delete\": "
            "\"delete\" is a C++ keyword and cannot name a C++ member "
            "function");
}

TEST_F(BadInputTest, KeywordServiceName) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service class { rpc Get(M) returns (M); })"),
            "bad/x.proto: service \"acme.v1.class\": \"class\" is a C++ "
            "keyword and cannot name a class");
}

TEST_F(BadInputTest, KeywordPackageSegment) {
  EXPECT_EQ(ErrorFor(R"(
      syntax = "proto3";
      package acme.namespace.v1;
      message M {}
      service S { rpc Get(M) returns (M); })"),
            "bad/x.proto: package \"acme.namespace.v1\": \"namespace\" is a "
            "C++ keyword and cannot name a namespace");
}

TEST_F(BadInputTest, ReservedIdentifier) {
  EXPECT_THAT(ErrorFor(std::string(kHeader) + R"(
      service S { rpc Get__All(M) returns (M); })"),
              HasSubstr("method \"Get__All\": \"Get__All\" is an identifier "
                        "reserved to the C++ implementation"));
}

TEST_F(BadInputTest, MethodsNamedLikeGeneratedMembers) {
  for (const std::string name : {"Service", "Stub", "Methods", "descriptor",
                                 "MethodTable", "kServiceName", "channel_"}) {
    SCOPED_TRACE(name);
    const std::string file = "bad/" + name + ".proto";
    EXPECT_EQ(ErrorFor(std::string(kHeader) + "service S { rpc " + name +
                           "(M) returns (M); }",
                       file),
              file + ": service \"acme.v1.S\", method \"" + name +
                  "\": method " + name + " clashes with the member " + name +
                  " that bevrpc generates for every service");
  }
}

TEST_F(BadInputTest, MethodClashingWithAnotherMethodsCallbackFlavour) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service S {
        rpc Foo(M) returns (M);
        rpc FooAsync(M) returns (M);
      })"),
            "bad/x.proto: service \"acme.v1.S\", method \"FooAsync\": method "
            "FooAsync clashes with FooAsync (the callback flavour of method "
            "Foo)");
}

TEST_F(BadInputTest, CallbackFlavourClashingWithALaterMethod) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service S {
        rpc FooAsync(M) returns (M);
        rpc Foo(M) returns (M);
      })"),
            "bad/x.proto: service \"acme.v1.S\", method \"Foo\": FooAsync "
            "(the callback flavour of method Foo) clashes with method "
            "FooAsync");
}

TEST_F(BadInputTest, ServiceNamedLikeAGeneratedMember) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service Stub { rpc Get(M) returns (M); })"),
            "bad/x.proto: service \"acme.v1.Stub\": the name clashes with "
            "the member Stub that bevrpc generates for every service");
}

TEST_F(BadInputTest, ServiceNamedLikeAMethodConstant) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service kGetMethod { rpc Get(M) returns (M); })"),
            "bad/x.proto: service \"acme.v1.kGetMethod\", method \"Get\": "
            "kGetMethod (the name constant of method Get) clashes with the "
            "service's class");
}

TEST_F(BadInputTest, ServiceNamedLikeAnIdempotencyConstant) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service kGetIdempotency { rpc Get(M) returns (M); })"),
            "bad/x.proto: service \"acme.v1.kGetIdempotency\", method "
            "\"Get\": kGetIdempotency (the idempotency constant of method "
            "Get) clashes with the service's class");
}

TEST_F(BadInputTest, MethodNamedLikeAnotherMethodsIdempotencyConstant) {
  EXPECT_EQ(ErrorFor(std::string(kHeader) + R"(
      service S {
        rpc Get(M) returns (M);
        rpc kGetIdempotency(M) returns (M);
      })"),
            "bad/x.proto: service \"acme.v1.S\", method \"kGetIdempotency\": "
            "method kGetIdempotency clashes with kGetIdempotency (the "
            "idempotency constant of method Get)");
}

TEST_F(BadInputTest, ReportsEveryProblemOnItsOwnLine) {
  const std::string error = ErrorFor(std::string(kHeader) + R"(
      service S {
        rpc delete(M) returns (M);
        rpc new(M) returns (M);
      })");
  const std::vector<std::string> lines = absl::StrSplit(error, '\n');
  ASSERT_EQ(lines.size(), 2u) << error;
  EXPECT_THAT(lines[0], HasSubstr("method \"delete\""));
  EXPECT_THAT(lines[1], HasSubstr("method \"new\""));
}

TEST_F(BadInputTest, ServicesInNestedPackagesAreFine) {
  ProtoFiles files;
  const FileDescriptor* file = files.Add("good/x.proto", R"(
      syntax = "proto3";
      package a.b.c.d;
      message M {}
      service Echo { rpc Echo(M) returns (M); })");
  ASSERT_NE(file, nullptr) << files.errors();
  InMemoryContext context;
  std::string error;
  EXPECT_TRUE(BevrpcGenerator().GenerateAll({file}, "", &context, &error))
      << error;
  EXPECT_THAT(context.files()["good/x.bevrpc.h"],
              HasSubstr("namespace a::b::c::d {"));
}

}  // namespace
}  // namespace bevrpc::protoc_gen
