// Every service of gRPC's .proto files (/usr/share/grpc-proto) was generated
// and compiled (or this would not link), and its generated descriptor() is
// reachable in a statically linked binary, including the six services of
// grpc/testing/test.proto, a file that defines no message.
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "grpc/channelz/v1/channelz.bevrpc.h"
#include "grpc/examples/helloworld.bevrpc.h"
#include "grpc/gcp/handshaker.bevrpc.h"
#include "grpc/health/v1/health.bevrpc.h"
#include "grpc/lb/v1/load_balancer.bevrpc.h"
#include "grpc/lb/v1/load_reporter.bevrpc.h"
#include "grpc/lookup/v1/rls.bevrpc.h"
#include "grpc/reflection/v1/reflection.bevrpc.h"
#include "grpc/reflection/v1alpha/reflection.bevrpc.h"
#include "grpc/testing/benchmark_service.bevrpc.h"
#include "grpc/testing/report_qps_scenario_service.bevrpc.h"
#include "grpc/testing/test.bevrpc.h"
#include "grpc/testing/worker_service.bevrpc.h"
#include "gtest/gtest.h"

namespace {

struct Expected {
  const google::protobuf::ServiceDescriptor* descriptor;
  const char* full_name;
  const char* file;
  int methods;
};

TEST(GrpcProtosTest, EveryServiceFindsItsDescriptor) {
  const std::vector<Expected> services = {
      {grpc::channelz::v1::Channelz::descriptor(), "grpc.channelz.v1.Channelz",
       "grpc/channelz/v1/channelz.proto", 7},
      {helloworld::Greeter::descriptor(), "helloworld.Greeter",
       "grpc/examples/helloworld.proto", 1},
      {grpc::gcp::HandshakerService::descriptor(),
       "grpc.gcp.HandshakerService", "grpc/gcp/handshaker.proto", 1},
      {grpc::health::v1::Health::descriptor(), "grpc.health.v1.Health",
       "grpc/health/v1/health.proto", 2},
      {grpc::lb::v1::LoadBalancer::descriptor(), "grpc.lb.v1.LoadBalancer",
       "grpc/lb/v1/load_balancer.proto", 1},
      {grpc::lb::v1::LoadReporter::descriptor(), "grpc.lb.v1.LoadReporter",
       "grpc/lb/v1/load_reporter.proto", 1},
      {grpc::lookup::v1::RouteLookupService::descriptor(),
       "grpc.lookup.v1.RouteLookupService", "grpc/lookup/v1/rls.proto", 1},
      {grpc::reflection::v1::ServerReflection::descriptor(),
       "grpc.reflection.v1.ServerReflection",
       "grpc/reflection/v1/reflection.proto", 1},
      {grpc::reflection::v1alpha::ServerReflection::descriptor(),
       "grpc.reflection.v1alpha.ServerReflection",
       "grpc/reflection/v1alpha/reflection.proto", 1},
      {grpc::testing::BenchmarkService::descriptor(),
       "grpc.testing.BenchmarkService", "grpc/testing/benchmark_service.proto",
       5},
      {grpc::testing::ReportQpsScenarioService::descriptor(),
       "grpc.testing.ReportQpsScenarioService",
       "grpc/testing/report_qps_scenario_service.proto", 1},
      {grpc::testing::WorkerService::descriptor(), "grpc.testing.WorkerService",
       "grpc/testing/worker_service.proto", 4},
      {grpc::testing::TestService::descriptor(), "grpc.testing.TestService",
       "grpc/testing/test.proto", 8},
      {grpc::testing::UnimplementedService::descriptor(),
       "grpc.testing.UnimplementedService", "grpc/testing/test.proto", 1},
      {grpc::testing::ReconnectService::descriptor(),
       "grpc.testing.ReconnectService", "grpc/testing/test.proto", 2},
      {grpc::testing::LoadBalancerStatsService::descriptor(),
       "grpc.testing.LoadBalancerStatsService", "grpc/testing/test.proto", 2},
      {grpc::testing::XdsUpdateHealthService::descriptor(),
       "grpc.testing.XdsUpdateHealthService", "grpc/testing/test.proto", 2},
      {grpc::testing::XdsUpdateClientConfigureService::descriptor(),
       "grpc.testing.XdsUpdateClientConfigureService",
       "grpc/testing/test.proto", 1},
  };
  for (const Expected& e : services) {
    SCOPED_TRACE(e.full_name);
    ASSERT_NE(e.descriptor, nullptr);
    EXPECT_EQ(e.descriptor->full_name(), e.full_name);
    EXPECT_EQ(e.descriptor->file()->name(), e.file);
    EXPECT_EQ(e.descriptor->method_count(), e.methods);
  }
}

// The method tables name the methods as the descriptors do.
TEST(GrpcProtosTest, MethodTablesMatchDescriptors) {
  const auto table = grpc::testing::TestService::MethodTable();
  const auto* descriptor = grpc::testing::TestService::descriptor();
  ASSERT_NE(descriptor, nullptr);
  ASSERT_EQ(static_cast<int>(table.size()), descriptor->method_count());
  for (int i = 0; i < descriptor->method_count(); ++i) {
    EXPECT_EQ(table[i].full_name, "grpc.testing.TestService/" +
                                      descriptor->method(i)->name());
  }
}

}  // namespace
