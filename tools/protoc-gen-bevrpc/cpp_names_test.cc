#include "tools/protoc-gen-bevrpc/cpp_names.h"

#include "gtest/gtest.h"

namespace bevrpc::protoc_gen {
namespace {

TEST(CppNamesTest, Keywords) {
  EXPECT_TRUE(IsCppKeyword("class"));
  EXPECT_TRUE(IsCppKeyword("delete"));
  EXPECT_TRUE(IsCppKeyword("and"));
  EXPECT_TRUE(IsCppKeyword("co_await"));
  EXPECT_FALSE(IsCppKeyword("Class"));
  EXPECT_FALSE(IsCppKeyword("Delete"));
  EXPECT_FALSE(IsCppKeyword("std"));
}

TEST(CppNamesTest, ReservedIdentifiers) {
  EXPECT_TRUE(IsReservedIdentifier("_Foo"));
  EXPECT_TRUE(IsReservedIdentifier("a__b"));
  EXPECT_FALSE(IsReservedIdentifier("_foo"));
  EXPECT_FALSE(IsReservedIdentifier("foo_"));
  EXPECT_FALSE(IsReservedIdentifier("_"));
}

TEST(CppNamesTest, PackageToNamespace) {
  EXPECT_EQ(CppNamespace("acme.inventory.v1"), "acme::inventory::v1");
  EXPECT_EQ(CppNamespace("echo"), "echo");
  EXPECT_EQ(CppNamespace(""), "");
}

TEST(CppNamesTest, FileNames) {
  EXPECT_EQ(ProtobufHeaderName("a/b/x.proto"), "a/b/x.pb.h");
  EXPECT_EQ(GeneratedHeaderName("a/b/x.proto"), "a/b/x.bevrpc.h");
  EXPECT_EQ(GeneratedSourceName("a/b/x.proto"), "a/b/x.bevrpc.cc");
  EXPECT_EQ(GeneratedHeaderName("x.proto"), "x.bevrpc.h");
}

TEST(CppNamesTest, HeaderGuard) {
  EXPECT_EQ(HeaderGuard("services/echo/echo.proto"),
            "SERVICES_ECHO_ECHO_BEVRPC_H_");
  EXPECT_EQ(HeaderGuard("a/x-y.proto"), "A_X_Y_BEVRPC_H_");
  EXPECT_EQ(HeaderGuard("3d/x.proto"), "BEVRPC_3D_X_BEVRPC_H_");
}

TEST(CppNamesTest, DescriptorTableName) {
  EXPECT_EQ(DescriptorTableName("tests/codegen/golden/greeter.proto"),
            "descriptor_table_tests_2fcodegen_2fgolden_2fgreeter_2eproto");
  EXPECT_EQ(DescriptorTableName("grpc/testing/test.proto"),
            "descriptor_table_grpc_2ftesting_2ftest_2eproto");
  EXPECT_EQ(DescriptorTableName("a_b/x-y.proto"),
            "descriptor_table_a_5fb_2fx_2dy_2eproto");
}

TEST(CppNamesTest, MemberNames) {
  EXPECT_EQ(MethodConstantName("GetItem"), "kGetItemMethod");
  EXPECT_EQ(AsyncMethodName("GetItem"), "GetItemAsync");
  EXPECT_EQ(IdempotencyConstantName("GetItem"), "kGetItemIdempotency");
}

}  // namespace
}  // namespace bevrpc::protoc_gen
