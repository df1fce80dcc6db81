#include "rpc/metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "rpc/metrics/build_info.h"

namespace bevrpc::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Fields of /proc/self/stat after the command name, so that field 3
// (state) is at index 0: the man page's field N is at index N - 3.
std::vector<std::string> ReadStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 > line.size()) return {};
  return absl::StrSplit(line.substr(paren + 2), ' ', absl::SkipEmpty());
}

double StatField(int field) {
  std::vector<std::string> fields = ReadStatFields();
  double v = 0;
  if (static_cast<int>(fields.size()) <= field - 3 ||
      !absl::SimpleAtod(fields[field - 3], &v)) {
    return kNaN;
  }
  return v;
}

double CpuSeconds() {
  std::vector<std::string> fields = ReadStatFields();
  double user = 0, system = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[14 - 3], &user) ||
      !absl::SimpleAtod(fields[15 - 3], &system)) {
    return kNaN;
  }
  return (user + system) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double ResidentBytes() {
  return StatField(24) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double VirtualBytes() { return StatField(23); }

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return kNaN;
  const int own = dirfd(dir);
  double count = 0;
  while (dirent* entry = readdir(dir)) {
    int fd = 0;
    if (absl::SimpleAtoi(entry->d_name, &fd) && fd != own) ++count;
  }
  closedir(dir);
  return count;
}

double MaxFds() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return kNaN;
  if (limit.rlim_cur == RLIM_INFINITY) {
    return std::numeric_limits<double>::infinity();
  }
  return static_cast<double>(limit.rlim_cur);
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    double v = 0;
    if (absl::StartsWith(line, "btime ") &&
        absl::SimpleAtod(line.substr(6), &v)) {
      return v;
    }
  }
  return kNaN;
}

double StartTimeSeconds() {
  return BootTimeSeconds() +
         StatField(22) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

MetricSpec Spec(const char* name, const char* help, const char* unit) {
  MetricSpec spec;
  spec.name = name;
  spec.help = help;
  spec.unit = unit;
  return spec;
}

// Adds a callback series with no labels (or `labels`); one already there
// from an earlier call is kept.
template <typename Family>
absl::Status AddOnce(absl::StatusOr<Family*> family,
                     std::vector<std::string> labels,
                     std::function<double()> read) {
  if (!family.ok()) return family.status();
  absl::StatusOr<CallbackHandle> handle =
      (*family)->AddCallback(std::move(labels), std::move(read));
  if (absl::IsAlreadyExists(handle.status())) return absl::OkStatus();
  if (!handle.ok()) return handle.status();
  handle->Release();
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterProcessMetrics(MetricsRegistry* registry) {
  const double start = StartTimeSeconds();
  struct GaugeDef {
    const char* name;
    const char* help;
    const char* unit;
    std::function<double()> read;
  };
  const GaugeDef gauges[] = {
      {"process_resident_memory_bytes", "Resident memory size in bytes.",
       "bytes", &ResidentBytes},
      {"process_virtual_memory_bytes", "Virtual memory size in bytes.",
       "bytes", &VirtualBytes},
      {"process_open_fds", "Number of open file descriptors.", "", &OpenFds},
      {"process_max_fds", "Maximum number of open file descriptors.", "",
       &MaxFds},
      {"process_start_time_seconds",
       "Start time of the process since unix epoch in seconds.", "seconds",
       [start] { return start; }},
  };
  for (const GaugeDef& g : gauges) {
    absl::Status s =
        AddOnce(registry->RegisterGaugeFamily(Spec(g.name, g.help, g.unit)),
                {}, g.read);
    if (!s.ok()) return s;
  }
  absl::Status s = AddOnce(
      registry->RegisterCounterFamily(
          Spec("process_cpu_seconds",
               "Total user and system CPU time spent in seconds.", "seconds")),
      {}, &CpuSeconds);
  if (!s.ok()) return s;
  MetricSpec build = Spec("bevrpc_build_info",
                          "bevrpc version this process was built with.", "");
  build.label_names = {"version"};
  return AddOnce(registry->RegisterGaugeFamily(build), {kBevrpcVersion},
                 [] { return 1.0; });
}

}  // namespace bevrpc::metrics
