#include "rpc/metrics/process_metrics.h"

#include <unistd.h>

#include <cmath>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/metrics/build_info.h"
#include "rpc/metrics/exposition.h"

namespace bevrpc::metrics {
namespace {

double ValueOf(const RegistrySnapshot& snap, const std::string& name) {
  const FamilySnapshot* f = snap.Find(name);
  EXPECT_NE(f, nullptr) << name;
  if (f == nullptr || f->series.size() != 1) return std::nan("");
  return f->series[0].value;
}

TEST(ProcessMetricsTest, PresentAndSane) {
  MetricsRegistry r;
  ASSERT_TRUE(RegisterProcessMetrics(&r).ok());
  RegistrySnapshot snap = r.Collect();
  const double rss = ValueOf(snap, "process_resident_memory_bytes");
  EXPECT_GT(rss, 1 << 20);
  EXPECT_LT(rss, 1e12);
  EXPECT_GE(ValueOf(snap, "process_virtual_memory_bytes"), rss);
  const double fds = ValueOf(snap, "process_open_fds");
  EXPECT_GE(fds, 3);
  EXPECT_GE(ValueOf(snap, "process_max_fds"), fds);
  const double cpu = ValueOf(snap, "process_cpu_seconds_total");
  EXPECT_GE(cpu, 0);
  EXPECT_TRUE(std::isfinite(cpu));
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  const double start = ValueOf(snap, "process_start_time_seconds");
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600);
  const FamilySnapshot* build = snap.Find("bevrpc_build_info");
  ASSERT_NE(build, nullptr);
  ASSERT_EQ(build->series.size(), 1u);
  EXPECT_EQ(build->series[0].label_values[0], kBevrpcVersion);
  EXPECT_EQ(build->series[0].value, 1);
}

TEST(ProcessMetricsTest, OpenFdsFollowsTheProcess) {
  MetricsRegistry r;
  ASSERT_TRUE(RegisterProcessMetrics(&r).ok());
  const double before = ValueOf(r.Collect(), "process_open_fds");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const double during = ValueOf(r.Collect(), "process_open_fds");
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(during, before + 2);
}

TEST(ProcessMetricsTest, SecondRegistrationChangesNothing) {
  MetricsRegistry r;
  ASSERT_TRUE(RegisterProcessMetrics(&r).ok());
  ASSERT_TRUE(RegisterProcessMetrics(&r).ok());
  std::string text;
  r.RenderPrometheus(&text);
  EXPECT_THAT(text, ::testing::HasSubstr(
                        "# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, ::testing::HasSubstr(std::string("bevrpc_build_info{version=\"") +
                                         kBevrpcVersion + "\"} 1\n"));
  EXPECT_EQ(r.Collect().Find("process_open_fds")->series.size(), 1u);
}

}  // namespace
}  // namespace bevrpc::metrics
