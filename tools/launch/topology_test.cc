#include "tools/launch/topology.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bevrpc::launch {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Binaries resolve against /bin, where "true" is an executable file.
absl::StatusOr<LaunchPlan> Plan(const std::string& text) {
  absl::StatusOr<Topology> t = ParseTopologyText(text, "t.textproto");
  if (!t.ok()) return t.status();
  return BuildPlan(*t, "/bin");
}

std::string Error(const std::string& text) {
  absl::StatusOr<LaunchPlan> plan = Plan(text);
  EXPECT_FALSE(plan.ok()) << text;
  return std::string(plan.status().message());
}

TEST(TopologyTest, OrdersDependenciesFirstWithDefaults) {
  absl::StatusOr<LaunchPlan> plan = Plan(R"(
    services { name: "web" binary: "true" depends_on: "kv" depends_on: "cache" }
    services { name: "cache" binary: "true" depends_on: "kv" }
    services { name: "kv" binary: "true" replicas: 3 port: 7000
               stop_grace: "500ms" readiness { timeout: "5s" } }
  )");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->services.size(), 3u);
  EXPECT_EQ(plan->services[0].name, "kv");
  EXPECT_EQ(plan->services[1].name, "cache");
  EXPECT_EQ(plan->services[2].name, "web");
  EXPECT_EQ(plan->services[0].replicas, 3);
  EXPECT_EQ(plan->services[0].base_port, 7000);
  EXPECT_EQ(plan->services[0].stop_grace, absl::Milliseconds(500));
  EXPECT_EQ(plan->services[0].ready_timeout, absl::Seconds(5));
  EXPECT_EQ(plan->services[0].binary, "/bin/true");
  EXPECT_EQ(plan->services[2].replicas, 1);
  EXPECT_EQ(plan->services[2].stop_grace, absl::Seconds(10));
  EXPECT_EQ(plan->services[2].ready_timeout, absl::Seconds(30));
  EXPECT_EQ(plan->host, "127.0.0.1");
  EXPECT_FALSE(plan->etcd_mode());
}

TEST(TopologyTest, SyntaxErrorNamesFileAndLine) {
  EXPECT_THAT(Error("services {\n name: \"a\"\n bogus: 1\n}"),
              HasSubstr("t.textproto: line 3"));
}

TEST(TopologyTest, ErrorsNameTheServiceAndField) {
  EXPECT_EQ(Error(R"(services { name: "a" binary: "no-such-binary" })"),
            "service \"a\": binary: \"no-such-binary\": no executable file at "
            "/bin/no-such-binary (relative paths resolve against "
            "--bin_dir=/bin; build it first)");
  EXPECT_EQ(Error(R"(services { name: "a" binary: "true" }
                     services { name: "a" binary: "true" })"),
            "service \"a\": name: duplicate service name");
  EXPECT_EQ(Error(R"(services { name: "a" binary: "true" depends_on: "b" })"),
            "service \"a\": depends_on: unknown service \"b\"");
  EXPECT_EQ(Error(R"(services { name: "a" binary: "true" stop_grace: "soon" })"),
            "service \"a\": stop_grace: \"soon\" is not a positive duration "
            "(e.g. 10s, 500ms, 1m)");
  EXPECT_THAT(
      Error(R"(services { name: "a" binary: "true" readiness { timeout: "-1s" } })"),
      HasSubstr("service \"a\": readiness.timeout: \"-1s\""));
  EXPECT_THAT(Error(R"(services { name: "A b" binary: "true" })"),
              HasSubstr("service name \"A b\""));
  EXPECT_THAT(Error(R"(services { name: "a" binary: "true" port: 65535 replicas: 2 })"),
              HasSubstr("service \"a\": port: 65535 + replicas - 1"));
  EXPECT_THAT(Error(R"(services { name: "a" binary: "true"
                        readiness { log_line: "x" health_service: "y" } })"),
              HasSubstr("service \"a\": readiness: "));
  EXPECT_THAT(Error(R"(registry: "file:///x" services { name: "a" binary: "true" })"),
              HasSubstr("registry: \"file:///x\""));
  EXPECT_THAT(Error(""), HasSubstr("services"));
}

TEST(TopologyTest, CycleIsReportedAsAPath) {
  EXPECT_EQ(Error(R"(
    services { name: "a" binary: "true" depends_on: "b" }
    services { name: "b" binary: "true" depends_on: "c" }
    services { name: "c" binary: "true" depends_on: "a" }
  )"),
            "service \"a\": depends_on: dependency cycle: a -> b -> c -> a");
  EXPECT_EQ(Error(R"(services { name: "a" binary: "true" depends_on: "a" })"),
            "service \"a\": depends_on: dependency cycle: a -> a");
}

TEST(TopologyTest, UnknownSubstitutionNamesServiceAndArgument) {
  EXPECT_THAT(
      Error(R"(services { name: "a" binary: "true" args: "--x=1" args: "--p={prot}" })"),
      HasSubstr("service \"a\": args[1]: \"--p={prot}\": unknown "
                "substitution {prot} (known: "));
  EXPECT_EQ(
      Error(R"(services { name: "a" binary: "true" args: "--kv={target:kv}" })"),
      "service \"a\": args[0]: \"--kv={target:kv}\": {target:kv}: no service "
      "\"kv\"");
  EXPECT_THAT(
      Error(R"(services { name: "a" binary: "true" env { key: "X" value: "{" } })"),
      HasSubstr("service \"a\": env[\"X\"]: \"{\": unclosed '{'"));
}

TEST(TopologyTest, ExpandsEverySubstitution) {
  absl::StatusOr<LaunchPlan> plan = Plan(R"(
    services { name: "kv" binary: "true" }
    services { name: "web" binary: "true"
      args: "--port={port}" args: "--host={host}" args: "{replica}:{name}:{id}"
      args: "--data={dir}/data" args: "--kv={target:kv}"
      args: "--register={register}" args: "{{literal}}"
      env { key: "ID" value: "{id}" } }
  )");
  ASSERT_TRUE(plan.ok()) << plan.status();
  const ServiceSpec& web = plan->services[1];
  SubstitutionValues v =
      ReplicaValues(*plan, web, ReplicaPlace{2, 4002, "/s/run/web.2"},
                    [](absl::string_view svc) {
                      return absl::StrCat("file:///s/endpoints/", svc);
                    });
  absl::StatusOr<std::vector<std::string>> args = ExpandArgs(web, v);
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(*args,
              ElementsAre("--port=4002", "--host=127.0.0.1", "2:web:web/2",
                          "--data=/s/run/web.2/data",
                          "--kv=file:///s/endpoints/kv", "--register=",
                          "{literal}"));
  absl::StatusOr<std::vector<std::string>> env = ExpandEnv(web, v);
  ASSERT_TRUE(env.ok());
  EXPECT_THAT(*env, ElementsAre("ID=web/2"));
}

TEST(TopologyTest, EtcdModeRegistersAndTargetsUnderThePrefix) {
  absl::StatusOr<LaunchPlan> plan = Plan(R"(
    registry: "etcd://127.0.0.1:2379/apps/"
    services { name: "kv" binary: "true" args: "--register={register}" }
  )");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->etcd_mode());
  EXPECT_EQ(RegistryTarget(*plan, "kv"), "etcd://127.0.0.1:2379/apps/kv");
  SubstitutionValues v =
      ReplicaValues(*plan, plan->services[0], ReplicaPlace{0, 1, "/d"},
                    [](absl::string_view) { return std::string(); });
  EXPECT_THAT(*ExpandArgs(plan->services[0], v),
              ElementsAre("--register=etcd://127.0.0.1:2379/apps/kv"));
}

TEST(SubstitutionTest, BracesAndErrors) {
  SubstitutionValues v;
  v.values = {{"a", "1"}};
  EXPECT_EQ(*Expand("x{a}y{{}}{a}", v), "x1y{}1");
  EXPECT_EQ(Expand("a}b", v).status().message(),
            "lone '}' at offset 1 (write }} for a literal brace)");
  EXPECT_EQ(Expand("{b}", v).status().message(),
            "unknown substitution {b} (known: {a} {target:SERVICE}; {{ and }} "
            "for literal braces)");
  EXPECT_FALSE(Expand("{target:x}", v).ok());  // No target function.
}

}  // namespace
}  // namespace bevrpc::launch
