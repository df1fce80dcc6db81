// The generator on small in-memory .proto files: file names, namespaces,
// comments, type names and layout. The exact output for one realistic file
// is pinned by the golden test (tests/codegen/golden); compiling and calling
// generated code by tests/codegen:generated_code_test; rejected input by
// tests/codegen:bad_input_test.
#include "tools/protoc-gen-bevrpc/generator.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "tools/protoc-gen-bevrpc/test_util.h"

namespace bevrpc::protoc_gen {
namespace {

using ::google::protobuf::FileDescriptor;
using ::testing::HasSubstr;
using ::testing::Not;

class GeneratorTest : public ::testing::Test {
 protected:
  // Generates code for `text` as the file `name`; fails the test on error.
  GeneratedCode Generate(const std::string& name, const std::string& text) {
    const FileDescriptor* file = files_.Add(name, text);
    EXPECT_NE(file, nullptr) << files_.errors();
    GeneratedCode code;
    if (file == nullptr) return code;
    absl::Status status = GenerateCode(*file, &code);
    EXPECT_TRUE(status.ok()) << status;
    return code;
  }

  ProtoFiles files_;
};

TEST_F(GeneratorTest, WritesHeaderAndSourceNextToThePbH) {
  const FileDescriptor* file = files_.Add("x/y/z.proto", R"(
      syntax = "proto3";
      package p;
      message M {}
      service S { rpc Get(M) returns (M); })");
  ASSERT_NE(file, nullptr) << files_.errors();
  InMemoryContext context;
  std::string error;
  ASSERT_TRUE(BevrpcGenerator().Generate(file, "", &context, &error)) << error;
  ASSERT_EQ(context.files().size(), 2u);
  EXPECT_THAT(context.files()["x/y/z.bevrpc.h"],
              HasSubstr("#include \"x/y/z.pb.h\""));
  EXPECT_THAT(context.files()["x/y/z.bevrpc.cc"],
              HasSubstr("#include \"x/y/z.bevrpc.h\""));
}

TEST_F(GeneratorTest, FileWithoutServicesOnlyIncludesItsMessages) {
  GeneratedCode code = Generate("m.proto", R"(
      syntax = "proto3";
      package a.b;
      message M {})");
  EXPECT_THAT(code.header, HasSubstr("#ifndef M_BEVRPC_H_"));
  EXPECT_THAT(code.header, HasSubstr("#include \"m.pb.h\""));
  EXPECT_THAT(code.header, Not(HasSubstr("namespace")));
  EXPECT_THAT(code.source, HasSubstr("#include \"m.bevrpc.h\""));
  EXPECT_THAT(code.source, Not(HasSubstr("namespace")));
}

TEST_F(GeneratorTest, NestedPackageBecomesNestedNamespace) {
  GeneratedCode code = Generate("inv.proto", R"(
      syntax = "proto3";
      package acme.inventory.v1;
      message M {}
      service Inventory { rpc Get(M) returns (M); })");
  EXPECT_THAT(code.header, HasSubstr("namespace acme::inventory::v1 {"));
  EXPECT_THAT(code.header, HasSubstr("}  // namespace acme::inventory::v1"));
  EXPECT_THAT(code.header, HasSubstr("kServiceName[] = "
                                     "\"acme.inventory.v1.Inventory\";"));
  EXPECT_THAT(code.header, HasSubstr("kGetMethod[] = "
                                     "\"acme.inventory.v1.Inventory/Get\";"));
  EXPECT_THAT(code.source, HasSubstr("namespace acme::inventory::v1 {"));
}

TEST_F(GeneratorTest, NoPackageMeansGlobalNamespace) {
  GeneratedCode code = Generate("bare.proto", R"(
      syntax = "proto3";
      message M {}
      service S { rpc Get(M) returns (M); })");
  EXPECT_THAT(code.header, Not(HasSubstr("namespace")));
  EXPECT_THAT(code.header, HasSubstr("kGetMethod[] = \"S/Get\";"));
}

TEST_F(GeneratorTest, CarriesLeadingCommentsOver) {
  GeneratedCode code = Generate("c.proto", R"(
      syntax = "proto3";
      package c;
      message M {}
      // Service comment,
      // two lines.
      service S {
        // Method comment.
        rpc Get(M) returns (M);  // Trailing comments stay behind.
      })");
  EXPECT_THAT(code.header, HasSubstr("// Service comment,\n// two lines.\n"
                                     "class S final {"));
  EXPECT_THAT(code.header, HasSubstr("    // Method comment.\n"
                                     "    virtual ::absl::Status Get("));
  EXPECT_THAT(code.header, HasSubstr("    // Method comment.\n"
                                     "    ::absl::StatusOr<M> Get("));
  EXPECT_THAT(code.header, Not(HasSubstr("Trailing")));
}

TEST_F(GeneratorTest, QualifiesTypesOfOtherPackagesAndHiddenNames) {
  ASSERT_NE(files_.Add("other.proto", R"(
      syntax = "proto3";
      package other.pkg;
      message Thing { message Inner {} })"),
            nullptr)
      << files_.errors();
  GeneratedCode code = Generate("q.proto", R"(
      syntax = "proto3";
      package q;
      import "other.proto";
      message Local {}
      message Stub {}
      service S {
        rpc A(Local) returns (other.pkg.Thing);
        rpc B(other.pkg.Thing.Inner) returns (Stub);
      })");
  // Same package: plain.
  EXPECT_THAT(code.header, HasSubstr("const Local& request"));
  // Other package, nested message: fully qualified protobuf class name.
  EXPECT_THAT(code.header, HasSubstr("::other::pkg::Thing* response"));
  EXPECT_THAT(code.header, HasSubstr("const ::other::pkg::Thing_Inner& "));
  // Same package, but S::Stub would hide it.
  EXPECT_THAT(code.header, HasSubstr("::q::Stub* response"));
  EXPECT_THAT(code.header, Not(HasSubstr(" Stub* response")));
}

TEST_F(GeneratorTest, ServiceMayShareItsNameWithAMethod) {
  GeneratedCode code = Generate("echo.proto", R"(
      syntax = "proto3";
      package bevrpc.echo;
      message EchoRequest {}
      message EchoResponse {}
      service Echo { rpc Echo(EchoRequest) returns (EchoResponse); })");
  EXPECT_THAT(code.header, HasSubstr("namespace bevrpc::echo {"));
  EXPECT_THAT(code.header, HasSubstr("kEchoMethod[] = "
                                     "\"bevrpc.echo.Echo/Echo\";"));
  EXPECT_THAT(code.header, HasSubstr("virtual void EchoAsync("));
}

TEST_F(GeneratorTest, ServiceWithoutMethods) {
  GeneratedCode code = Generate("e.proto", R"(
      syntax = "proto3";
      package e;
      service Nothing {})");
  EXPECT_THAT(code.header, HasSubstr("class Nothing final {"));
  EXPECT_THAT(code.header,
              HasSubstr("[[maybe_unused]] ::bevrpc::Channel* channel_;"));
  EXPECT_THAT(code.source, HasSubstr("methods(0);"));
  // No message in the file: the descriptor is still found, through the
  // file's descriptor table, which also links the file's .pb.o.
  EXPECT_THAT(code.source,
              HasSubstr("::google::protobuf::internal::AssignDescriptors(\n"
                        "        &::descriptor_table_e_2eproto);\n"));
  EXPECT_THAT(code.source, HasSubstr("FindFileByName(\n"
                                     "            \"e.proto\");\n"));
}

TEST_F(GeneratorTest, UnimplementedDefaultNamesTheMethod) {
  GeneratedCode code = Generate("u.proto", R"(
      syntax = "proto3";
      package u;
      message M {}
      service S { rpc Get(M) returns (M); })");
  EXPECT_THAT(code.source,
              HasSubstr("  return ::absl::UnimplementedError(\n"
                        "      ::absl::StrCat(\"method \", kGetMethod, "
                        "\" not implemented\"));\n"));
}

TEST_F(GeneratorTest, IdempotencyLevelsGiveConstantsTableEntriesRegistration) {
  GeneratedCode code = Generate("i.proto", R"(
      syntax = "proto3";
      package i;
      message M {}
      service S {
        rpc Get(M) returns (M) { option idempotency_level = NO_SIDE_EFFECTS; }
        rpc Set(M) returns (M) { option idempotency_level = IDEMPOTENT; }
        rpc Add(M) returns (M);
        rpc Watch(M) returns (stream M) {
          option idempotency_level = NO_SIDE_EFFECTS;
        }
      }
      service T {
        rpc Put(M) returns (M) { option idempotency_level = IDEMPOTENT; }
      })");
  const std::string constant = "  static constexpr ::bevrpc::Idempotency ";
  EXPECT_THAT(code.header, HasSubstr("#include \"rpc/idempotency.h\"\n"));
  EXPECT_THAT(code.header,
              HasSubstr(constant + "kGetIdempotency =\n" +
                        "      ::bevrpc::Idempotency::kNoSideEffects;\n"));
  EXPECT_THAT(code.header,
              HasSubstr(constant + "kSetIdempotency =\n" +
                        "      ::bevrpc::Idempotency::kIdempotent;\n"));
  EXPECT_THAT(code.header,
              HasSubstr(constant + "kAddIdempotency =\n" +
                        "      ::bevrpc::Idempotency::kUnknown;\n"));
  EXPECT_THAT(code.header, HasSubstr("Retries apply to unary calls only"));
  // The method table sets the levels that are not kUnknown.
  EXPECT_THAT(code.source,
              HasSubstr("  methods[0].idempotency = kGetIdempotency;\n"));
  EXPECT_THAT(code.source,
              HasSubstr("  methods[1].idempotency = kSetIdempotency;\n"));
  EXPECT_THAT(code.source, Not(HasSubstr("kAddIdempotency")));
  EXPECT_THAT(code.source,
              HasSubstr("  methods[3].kind = "
                        "::bevrpc::MethodKind::kServerStreaming;\n"
                        "  methods[3].idempotency = kWatchIdempotency;\n"));
  // One registration for the file, at start-up, of every level but kUnknown.
  EXPECT_THAT(code.source,
              HasSubstr("namespace {\n"
                        "\n"
                        "[[maybe_unused]] const bool idempotency_registered = "
                        "[] {\n"
                        "  ::bevrpc::RegisterIdempotencies({\n"
                        "      {S::kGetMethod, S::kGetIdempotency},\n"
                        "      {S::kSetMethod, S::kSetIdempotency},\n"
                        "      {S::kWatchMethod, S::kWatchIdempotency},\n"
                        "      {T::kPutMethod, T::kPutIdempotency},\n"
                        "  });\n"
                        "  return true;\n"
                        "}();\n"
                        "\n"
                        "}  // namespace\n"
                        "\n"
                        "}  // namespace i\n"));
}

TEST_F(GeneratorTest, NoIdempotencyLevelsNoRegistration) {
  GeneratedCode code = Generate("n.proto", R"(
      syntax = "proto3";
      package n;
      message M {}
      service S { rpc Add(M) returns (M); })");
  EXPECT_THAT(code.header, HasSubstr("kAddIdempotency =\n"
                                     "      ::bevrpc::Idempotency::kUnknown;"));
  EXPECT_THAT(code.source, Not(HasSubstr("idempotency")));
  EXPECT_THAT(code.source, Not(HasSubstr("RegisterIdempotencies")));
}

TEST_F(GeneratorTest, LongIdempotencyEntriesWrap) {
  GeneratedCode code = Generate("w.proto", R"(
      syntax = "proto3";
      package w;
      message M {}
      service InventoryReservations {
        rpc ReserveInventoryItems(M) returns (M) {
          option idempotency_level = IDEMPOTENT;
        }
      })");
  EXPECT_THAT(code.source,
              HasSubstr("      {InventoryReservations::"
                        "kReserveInventoryItemsMethod,\n"
                        "       InventoryReservations::"
                        "kReserveInventoryItemsIdempotency},\n"));
}

TEST_F(GeneratorTest, LinesFitIn80Columns) {
  GeneratedCode code = Generate("long/path/to/the/service_definitions.proto",
                                R"(
      syntax = "proto3";
      package acme.warehouse.inventory.v1;
      message ReserveInventoryItemsRequest {}
      message ReserveInventoryItemsResponse {}
      // A comment.
      service InventoryReservations {
        rpc ReserveInventoryItems(ReserveInventoryItemsRequest)
            returns (ReserveInventoryItemsResponse) {
          option idempotency_level = IDEMPOTENT;
        }
      })");
  for (const std::string& file : {code.header, code.source}) {
    for (absl::string_view line : absl::StrSplit(file, '\n')) {
      // One token alone on its line cannot be wrapped (the file's
      // descriptor table, named after the file's path, can be any length).
      if (absl::StrContains(absl::StripAsciiWhitespace(line), ' ')) {
        EXPECT_LE(line.size(), 80u) << line;
      } else {
        EXPECT_LE(line.size(), 100u) << line;
      }
    }
  }
}

TEST_F(GeneratorTest, Proto3OptionalIsSupported) {
  EXPECT_NE(BevrpcGenerator().GetSupportedFeatures() &
                BevrpcGenerator::FEATURE_PROTO3_OPTIONAL,
            0u);
}

TEST_F(GeneratorTest, RejectsOptions) {
  const FileDescriptor* file = files_.Add("o.proto", R"(
      syntax = "proto3";
      package o;)");
  ASSERT_NE(file, nullptr) << files_.errors();
  InMemoryContext context;
  std::string error;
  EXPECT_FALSE(BevrpcGenerator().Generate(file, "lite", &context, &error));
  EXPECT_EQ(error,
            "unknown --bevrpc_opt \"lite\": protoc-gen-bevrpc takes no "
            "options");
  EXPECT_TRUE(context.files().empty());
}

}  // namespace
}  // namespace bevrpc::protoc_gen
