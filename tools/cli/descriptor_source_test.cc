// DescriptorSource registers the idempotency level of every method it
// loads, from .proto files (--proto) and from a server's reflection, so the
// CLI's calls get the default retries a generated stub's get. The
// registry is process-wide: each test uses names of its own, or first
// resets the names it checks.
#include "tools/cli/descriptor_source.h"

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/idempotency.h"
#include "rpc/server.h"
#include "services/builtin/reflection_service.h"
#include "services/echo/echo_service.h"

namespace bevrpc::cli {
namespace {

// Writes `text` to TEST_TMPDIR/`name` and returns the directory.
std::string WriteProto(const std::string& name, const std::string& text) {
  std::string dir = getenv("TEST_TMPDIR");
  std::ofstream(absl::StrCat(dir, "/", name)) << text;
  return dir;
}

TEST(DescriptorSourceTest, ProtoFilesRegisterEveryMethodsLevelWithImports) {
  WriteProto("idem_base.proto", R"(
      syntax = "proto3";
      package idem.base;
      message M {}
      service Imported {
        rpc Read(M) returns (M) { option idempotency_level = NO_SIDE_EFFECTS; }
      })");
  std::string dir = WriteProto("idem_top.proto", R"(
      syntax = "proto3";
      package idem.top;
      import "idem_base.proto";
      service Top {
        rpc Get(idem.base.M) returns (idem.base.M) {
          option idempotency_level = NO_SIDE_EFFECTS;
        }
        rpc Set(idem.base.M) returns (idem.base.M) {
          option idempotency_level = IDEMPOTENT;
        }
        rpc Add(idem.base.M) returns (idem.base.M);
      })");
  // A level registered earlier for a method the file leaves unmarked: the
  // file's descriptor wins.
  RegisterIdempotency("idem.top.Top/Add", Idempotency::kIdempotent);

  auto source = DescriptorSource::FromProtoFiles({"idem_top.proto"}, {dir});
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(LookupIdempotency("idem.top.Top/Get"), Idempotency::kNoSideEffects);
  EXPECT_EQ(LookupIdempotency("idem.top.Top/Set"), Idempotency::kIdempotent);
  EXPECT_EQ(LookupIdempotency("idem.top.Top/Add"), Idempotency::kUnknown);
  EXPECT_EQ(LookupIdempotency("idem.base.Imported/Read"),
            Idempotency::kNoSideEffects);
}

TEST(DescriptorSourceTest, ReflectionRegistersTheLevelsTheServerDeclares) {
  // This test links echo's generated code, which registered its levels at
  // start-up: forget them, so only DescriptorSource can bring them back.
  for (const char* method : {"Echo", "Expand", "Collect", "Chat"}) {
    RegisterIdempotency(absl::StrCat("bevrpc.echo.Echo/", method),
                        Idempotency::kUnknown);
  }
  RegisterIdempotency("bevrpc.reflection.v1.ServerReflection/ListServices",
                      Idempotency::kUnknown);

  Server server{ServerOptions()};
  echo::EchoService echo;
  ASSERT_TRUE(server.RegisterService(&echo).ok());
  ASSERT_TRUE(builtin::AddReflection(server).ok());
  ASSERT_TRUE(server.Start().ok());
  absl::StatusOr<std::unique_ptr<Channel>> channel =
      Channel::Create(absl::StrCat("127.0.0.1:", server.port()));
  ASSERT_TRUE(channel.ok()) << channel.status();

  std::unique_ptr<DescriptorSource> source =
      DescriptorSource::FromReflection(channel->get(), absl::Seconds(30));
  auto method = source->FindMethod("bevrpc.echo.Echo/Echo");
  ASSERT_TRUE(method.ok()) << method.status();
  EXPECT_EQ((*method)->options().idempotency_level(),
            google::protobuf::MethodOptions::NO_SIDE_EFFECTS);
  for (const char* name : {"Echo", "Expand", "Collect", "Chat"}) {
    EXPECT_EQ(LookupIdempotency(absl::StrCat("bevrpc.echo.Echo/", name)),
              Idempotency::kNoSideEffects)
        << name;
  }
  // Only the files loaded: reflection's own file was not asked for.
  EXPECT_EQ(
      LookupIdempotency("bevrpc.reflection.v1.ServerReflection/ListServices"),
      Idempotency::kUnknown);

  channel->reset();
  server.Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace bevrpc::cli
