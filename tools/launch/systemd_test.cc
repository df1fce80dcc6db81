#include "tools/launch/systemd.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bevrpc::launch {
namespace {

using ::testing::HasSubstr;

LaunchPlan Plan(const std::string& text) {
  return BuildPlan(*ParseTopologyText(text, "t"), "/bin").value();
}

TEST(SystemdTest, UnitCarriesCommandPoliciesAndDependencies) {
  LaunchPlan plan = Plan(R"(
    services { name: "kv" binary: "true" replicas: 2 port: 7000 }
    services { name: "web" binary: "true" port: 8000 depends_on: "kv"
      restart: ON_FAILURE stop_grace: "3s"
      args: "--port={port}" args: "--kv={target:kv}" args: "--q=\"50%\""
      args: "--data={dir}" env { key: "MODE" value: "{id}" } }
  )");
  absl::StatusOr<std::string> unit =
      SystemdUnit(plan, plan.services[1], 0, "/units", BackoffPolicy{});
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_THAT(*unit, HasSubstr(
      "ExecStart=\"/bin/true\" \"--port=8000\" "
      "\"--kv=file:///units/endpoints/kv\" \"--q=\\\"50%%\\\"\" "
      "\"--data=/var/lib/bevrpc/web.0\"\n"));
  EXPECT_THAT(*unit, HasSubstr("After=network.target bevrpc-kv-0.service "
                               "bevrpc-kv-1.service\n"));
  EXPECT_THAT(*unit,
              HasSubstr("Requires=bevrpc-kv-0.service bevrpc-kv-1.service\n"));
  EXPECT_THAT(*unit, HasSubstr("Environment=\"MODE=web/0\"\n"));
  EXPECT_THAT(*unit, HasSubstr("Restart=on-failure\nRestartSec=100ms\n"));
  EXPECT_THAT(*unit, HasSubstr("KillSignal=SIGTERM\nTimeoutStopSec=3000ms\n"));
  EXPECT_THAT(*unit, HasSubstr("StateDirectory=bevrpc/web.0\n"));
  EXPECT_THAT(*unit, HasSubstr("StartLimitBurst=5\n"));
}

TEST(SystemdTest, WritesUnitsAndStaticEndpointLists) {
  LaunchPlan plan = Plan(R"(
    services { name: "kv" binary: "true" replicas: 2 port: 7000 })");
  const std::string dir = std::string(getenv("TEST_TMPDIR")) + "/units";
  ASSERT_TRUE(EmitSystemdUnits(plan, dir).ok());
  std::ifstream unit(dir + "/bevrpc-kv-1.service");
  EXPECT_TRUE(unit.good());
  std::ifstream list(dir + "/endpoints/kv");
  std::stringstream text;
  text << list.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("127.0.0.1:7000 id=kv/0\n"
                                    "127.0.0.1:7001 id=kv/1\n"));
}

TEST(SystemdTest, RefusesPickedPorts) {
  LaunchPlan plan = Plan(R"(services { name: "kv" binary: "true" })");
  absl::Status s = EmitSystemdUnits(plan, "/nonexistent");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("service \"kv\": port: 0"));
}

}  // namespace
}  // namespace bevrpc::launch
