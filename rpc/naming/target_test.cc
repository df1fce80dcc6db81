#include "rpc/naming/target.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace bevrpc::naming {
namespace {

HostPort HP(std::string host, uint16_t port) { return HostPort{host, port}; }

TEST(TargetTest, HostPortForms) {
  absl::StatusOr<Target> t = ParseTarget("localhost:8080");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->scheme, Target::Scheme::kHostPort);
  EXPECT_EQ(t->endpoints, std::vector<HostPort>{HP("localhost", 8080)});
  t = ParseTarget("[::1]:50051");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->endpoints, std::vector<HostPort>{HP("::1", 50051)});
  EXPECT_EQ(t->ToString(), "[::1]:50051");
}

TEST(TargetTest, DnsWithAndWithoutServer) {
  absl::StatusOr<Target> t = ParseTarget("dns:///echo.internal:443");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->scheme, Target::Scheme::kDns);
  EXPECT_EQ(t->endpoints, std::vector<HostPort>{HP("echo.internal", 443)});
  EXPECT_TRUE(t->dns_server.host.empty());
  EXPECT_EQ(t->ToString(), "dns:///echo.internal:443");

  t = ParseTarget("dns://127.0.0.53/echo:80");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dns_server, HP("127.0.0.53", 53));
  t = ParseTarget("dns://[::1]:5353/echo:80");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dns_server, HP("::1", 5353));
  EXPECT_EQ(t->ToString(), "dns://[::1]:5353/echo:80");
}

TEST(TargetTest, ListKeepsOrder) {
  absl::StatusOr<Target> t =
      ParseTarget("list:///10.0.0.1:80,[fe80::1]:81,b.example:82");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->scheme, Target::Scheme::kList);
  EXPECT_EQ(t->endpoints,
            (std::vector<HostPort>{HP("10.0.0.1", 80), HP("fe80::1", 81),
                                   HP("b.example", 82)}));
  EXPECT_EQ(t->ToString(), "list:///10.0.0.1:80,[fe80::1]:81,b.example:82");
}

TEST(TargetTest, FileNeedsAnAbsolutePath) {
  absl::StatusOr<Target> t = ParseTarget("file:///run/bevrpc/echo.endpoints");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->scheme, Target::Scheme::kFile);
  EXPECT_EQ(t->path, "/run/bevrpc/echo.endpoints");
  EXPECT_EQ(t->ToString(), "file:///run/bevrpc/echo.endpoints");
}

TEST(TargetTest, EtcdPrefixAlwaysEndsWithASlash) {
  absl::StatusOr<Target> t =
      ParseTarget("etcd://127.0.0.1:2379,127.0.0.2:2379/services/echo");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->scheme, Target::Scheme::kEtcd);
  EXPECT_EQ(t->etcd_members, (std::vector<HostPort>{HP("127.0.0.1", 2379),
                                                    HP("127.0.0.2", 2379)}));
  // So that "services/echo" never matches the keys of "services/echo2".
  EXPECT_EQ(t->prefix, "services/echo/");
  EXPECT_EQ(t->ToString(), "etcd://127.0.0.1:2379,127.0.0.2:2379/services/echo/");
  absl::StatusOr<Target> again = ParseTarget(t->ToString());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->prefix, "services/echo/");
}

// Every error names the target, says what is wrong, and lists the forms.
TEST(TargetTest, BadTargetsSayWhatIsWrong) {
  const struct {
    const char* target;
    const char* why;
  } cases[] = {
      {"", "it is empty"},
      {"localhost", "needs a port"},
      {"localhost:0", "is not a number from 1 to 65535"},
      {"localhost:70000", "is not a number from 1 to 65535"},
      {"localhost:http", "is not a number from 1 to 65535"},
      {"::1:80", "an IPv6 address needs brackets"},
      {"[::1:80", "lacks the closing ']'"},
      {"[::1]80", "needs :PORT after ']'"},
      {":80", "has an empty host"},
      {"dns:///echo", "needs a port"},
      {"list:///", "the list is empty"},
      {"list:///a:1,,b:2", "the list has an empty entry"},
      {"list://x/a:1", "takes no authority"},
      {"file://relative/path", "takes an absolute path"},
      {"file:///", "the path is empty"},
      {"etcd:///echo", "needs the etcd members"},
      {"etcd://127.0.0.1:2379", "needs a key PREFIX"},
      {"etcd://127.0.0.1/echo", "needs a port"},
      {"consul://x/echo", "unknown scheme \"consul\""},
      {"host name:80", "contains ' '"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<Target> t = ParseTarget(c.target);
    ASSERT_FALSE(t.ok()) << c.target;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(t.status().message());
    EXPECT_TRUE(absl::StrContains(message, c.why)) << c.target << ": " << message;
    EXPECT_TRUE(absl::StrContains(
        message, absl::StrCat("target \"", c.target, "\" does not parse")))
        << message;
    EXPECT_TRUE(absl::StrContains(message, "etcd://HOST:PORT")) << message;
  }
}

}  // namespace
}  // namespace bevrpc::naming
