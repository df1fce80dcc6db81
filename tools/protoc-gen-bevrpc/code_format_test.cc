#include "tools/protoc-gen-bevrpc/code_format.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace bevrpc::protoc_gen {
namespace {

TEST(WrapCallTest, OneLineWhenItFits) {
  EXPECT_EQ(WrapCall(2, "void F(", {"int a", "int b"}, ");"),
            "  void F(int a, int b);\n");
  EXPECT_EQ(WrapCall(0, "void F(", {}, ");"), "void F();\n");
}

TEST(WrapCallTest, AlignsOnePerLineAfterTheParenthesis) {
  const std::vector<std::string> params = {"::bevrpc::ServerContext& ctx",
                                           "const HelloRequest& request",
                                           "HelloReply* response"};
  EXPECT_EQ(
      WrapCall(4, "virtual ::absl::Status SayHello(", params, ");"),
      "    virtual ::absl::Status SayHello(::bevrpc::ServerContext& ctx,\n"
      "                                    const HelloRequest& request,\n"
      "                                    HelloReply* response);\n");
}

TEST(WrapCallTest, BreaksAfterTheParenthesisWhenAlignedDoesNotFit) {
  const std::string head(65, 'x');
  EXPECT_EQ(WrapCall(0, head + "(", {"int first_argument", "int second"}, ");"),
            head + "(\n    int first_argument, int second);\n");
  const std::vector<std::string> longer = {std::string(40, 'a'),
                                           std::string(40, 'b')};
  EXPECT_EQ(WrapCall(0, head + "(", longer, ");"),
            head + "(\n    " + longer[0] + ",\n    " + longer[1] + ");\n");
}

TEST(WrapCallTest, BinPacksCallArguments) {
  const std::string args =
      WrapCall(2, "return channel_->CallAsync(",
               {"kSayHelloMethod", "request", "response", "options",
                "::std::move(done)", "trailers"},
               ");", Packing::kBinPack);
  EXPECT_EQ(args,
            "  return channel_->CallAsync(kSayHelloMethod, request, response, "
            "options,\n"
            "                             ::std::move(done), trailers);\n");
}

TEST(WrapCallTest, OverlongArgumentIsNeverSplit) {
  const std::string arg(100, 'a');
  EXPECT_EQ(WrapCall(0, "f(", {arg}, ");"), "f(\n    " + arg + ");\n");
}

TEST(WrapFunctionTest, ReturnTypeOnItsOwnLineWhenTheHeadOverflows) {
  EXPECT_EQ(WrapFunction(0, "int", "F", {"int a"}, ") {"), "int F(int a) {\n");
  const std::string type = "::absl::StatusOr<" + std::string(30, 'T') + ">";
  const std::string name = "Service::Stub::" + std::string(30, 'n');
  EXPECT_EQ(WrapFunction(0, type, name, {"int a"}, ") {"),
            type + "\n" + name + "(int a) {\n");
}

TEST(WrapAssignmentTest, BreaksAfterTheEqualsSign) {
  EXPECT_EQ(WrapAssignment(2, "int x", "1"), "  int x = 1;\n");
  const std::string rhs(70, 'r');
  EXPECT_EQ(WrapAssignment(2, "static constexpr char kX[]", rhs),
            "  static constexpr char kX[] =\n      " + rhs + ";\n");
}

TEST(CommentBlockTest, KeepsLinesAndTheirLeadingSpace) {
  EXPECT_EQ(CommentBlock(2, " First line.\n   Indented.\n\n Last.\n"),
            "  // First line.\n  //   Indented.\n  //\n  // Last.\n");
}

TEST(CommentBlockTest, EmptyCommentGivesNothing) {
  EXPECT_EQ(CommentBlock(4, ""), "");
  EXPECT_EQ(CommentBlock(4, "\n\n"), "");
}

TEST(CommentBlockTest, DropsTrailingBackslashesThatWouldSpliceLines) {
  EXPECT_EQ(CommentBlock(0, " a path C:\\dir\\ \n next\\\\\n"),
            "// a path C:\\dir\n// next\n");
}

TEST(CommentBlockTest, StripsTrailingWhitespaceAndCarriageReturns) {
  EXPECT_EQ(CommentBlock(0, " dos line \r\n"), "// dos line\n");
}

}  // namespace
}  // namespace bevrpc::protoc_gen
