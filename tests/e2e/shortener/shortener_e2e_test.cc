// kv_server ×3 and shortener_server ×2 as real processes, wired as the demo
// topology wires them: both shorteners reach kv through one file:/// target
// whose lines carry the shards' ids (kv/0, kv/1, kv/2). Calls go through the
// CLI (`bevrpc call`) and through a list:/// channel over both shorteners.
#include <stdio.h>
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "services/shortener/shortener.bevrpc.h"
#include "tests/testing/server_process.h"

namespace bevrpc::shortener {
namespace {

using ::bevrpc::testing::RunfilePath;
using ::bevrpc::testing::ServerProcess;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` (shell syntax) under timeout(1), so a hang cannot outlive
// the test: exit 124 then.
CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  std::string full = absl::StrCat("timeout -k 5 30 ", command, " 2>&1");
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Binary(const std::string& runfile) {
  absl::StatusOr<std::string> path = RunfilePath(runfile);
  return path.ok() ? *path : runfile;
}

// `bevrpc call TARGET METHOD 'JSON'`.
CommandResult Call(const std::string& target, const std::string& method,
                   const std::string& json) {
  return RunCommand(absl::StrCat(Binary("tools/bevrpc"), " call ", target,
                          " bevrpc.shortener.Shortener/", method, " '", json,
                          "'"));
}

// The "code" of a Shorten answer printed by the CLI, or "".
std::string CodeOf(const std::string& json) {
  const std::string key = "\"code\":\"";
  size_t at = json.find(key);
  if (at == std::string::npos) return "";
  size_t end = json.find('"', at + key.size());
  return json.substr(at + key.size(), end - at - key.size());
}

class ShortenerProcessesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string lines;
    for (int i = 0; i < 3; ++i) {
      auto kv = ServerProcess::Start("services/kv/kv_server", {"--port=0"});
      ASSERT_TRUE(kv.ok()) << kv.status();
      absl::StrAppend(&lines, "127.0.0.1:", (*kv)->port(), " id=kv/", i, "\n");
      kv_.push_back(*std::move(kv));
    }
    const char* tmp = getenv("TEST_TMPDIR");
    std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/kv");
    std::ofstream(path) << lines;
    kv_target_ = absl::StrCat("file://", path);
    for (int i = 0; i < 2; ++i) {
      auto s = ServerProcess::Start("services/shortener/shortener_server",
                                    {"--port=0", "--kv=" + kv_target_});
      ASSERT_TRUE(s.ok()) << s.status();
      shorteners_.push_back(*std::move(s));
    }
  }

  void TearDown() override {
    for (auto& s : shorteners_) EXPECT_TRUE(s->Stop().ok());
    for (auto& kv : kv_) EXPECT_TRUE(kv->Stop().ok());
  }

  std::string Address(int shortener) const {
    return absl::StrCat("127.0.0.1:", shorteners_[shortener]->port());
  }

  std::vector<std::unique_ptr<ServerProcess>> kv_;
  std::vector<std::unique_ptr<ServerProcess>> shorteners_;
  std::string kv_target_;
};

TEST_F(ShortenerProcessesTest, CliShortensOnOneReplicaAndLooksUpOnTheOther) {
  CommandResult shorten =
      Call(Address(0), "Shorten", R"({"url":"https://example.com/e2e"})");
  ASSERT_EQ(shorten.exit_code, 0) << shorten.output;
  std::string code = CodeOf(shorten.output);
  ASSERT_EQ(code.size(), 7u) << shorten.output;
  EXPECT_EQ(shorten.output, absl::StrCat("{\"code\":\"", code, "\"}\n"));

  CommandResult again =
      Call(Address(1), "Shorten", R"({"url":"https://example.com/e2e"})");
  EXPECT_EQ(again.output, shorten.output) << "one code whichever replica";
  CommandResult lookup =
      Call(Address(1), "Lookup", absl::StrCat(R"({"code":")", code, R"("})"));
  EXPECT_EQ(lookup.exit_code, 0) << lookup.output;
  EXPECT_EQ(lookup.output, "{\"url\":\"https://example.com/e2e\"}\n");

  // Both replicas behind one list:/// target.
  std::string both = absl::StrCat("list:///", Address(0), ",", Address(1));
  for (int i = 0; i < 4; ++i) {
    CommandResult r =
        Call(both, "Lookup", absl::StrCat(R"({"code":")", code, R"("})"));
    EXPECT_EQ(r.output, "{\"url\":\"https://example.com/e2e\"}\n");
  }

  CommandResult missing = Call(both, "Lookup", R"({"code":"Nope123"})");
  EXPECT_EQ(missing.exit_code, 64 + 5) << missing.output;  // NOT_FOUND
  EXPECT_EQ(missing.output, "NOT_FOUND: code \"Nope123\" not found\n");
  CommandResult bad = Call(both, "Shorten", R"({"url":"ftp://x/"})");
  EXPECT_EQ(bad.exit_code, 64 + 3) << bad.output;  // INVALID_ARGUMENT
  EXPECT_EQ(bad.output,
            "INVALID_ARGUMENT: url \"ftp://x/\" does not start with http:// "
            "or https://\n");
}

TEST_F(ShortenerProcessesTest, ChannelOverBothReplicas) {
  auto channel = Channel::Create(
      absl::StrCat("list:///", Address(0), ",", Address(1)));
  ASSERT_TRUE(channel.ok()) << channel.status();
  Shortener::Stub stub(channel->get());
  CallOptions options;
  options.timeout = absl::Seconds(10);
  constexpr int kUrls = 40;
  std::vector<std::string> codes;
  for (int i = 0; i < kUrls; ++i) {
    ShortenRequest request;
    request.set_url(absl::StrCat("https://e2e.example/", i));
    absl::StatusOr<ShortenResponse> r = stub.Shorten(request, options);
    ASSERT_TRUE(r.ok()) << r.status();
    codes.push_back(r->code());
  }
  for (int i = 0; i < kUrls; ++i) {
    LookupRequest request;
    request.set_code(codes[i]);
    absl::StatusOr<LookupResponse> r = stub.Lookup(request, options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->url(), absl::StrCat("https://e2e.example/", i));
  }
  // round_robin spread the calls over both replicas.
  std::vector<ChannelEndpoint> endpoints = (*channel)->endpoints();
  ASSERT_EQ(endpoints.size(), 2u);
  for (const ChannelEndpoint& e : endpoints) {
    EXPECT_EQ(e.calls_started, static_cast<uint64_t>(kUrls)) << e.address;
  }
}

TEST(ShortenerServerFlagsTest, MissingOrBadKvExitsTwoNamingTheFlag) {
  std::string server = Binary("services/shortener/shortener_server");
  CommandResult none = RunCommand(server + " --port=0");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.output,
            "shortener_server: --kv is required: the kv service's target "
            "(e.g. --kv=127.0.0.1:7001 or --kv=file:///PATH/endpoints/kv)\n");
  CommandResult bad = RunCommand(server + " --port=0 --kv=etcd://127.0.0.1:2379");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(absl::StartsWith(
      bad.output, "shortener_server: --kv=etcd://127.0.0.1:2379: target "))
      << bad.output;
  CommandResult url =
      RunCommand(server + " --port=0 --kv=127.0.0.1:1 --max_url_bytes=0");
  EXPECT_EQ(url.exit_code, 2);
  EXPECT_EQ(url.output,
            "shortener_server: --max_url_bytes=0: must be 1 to 1048576\n");
}

}  // namespace
}  // namespace bevrpc::shortener
