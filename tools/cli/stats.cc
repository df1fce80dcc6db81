#include "tools/cli/stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bevrpc::cli {
namespace {

using MethodKey = std::pair<std::string, std::string>;  // service, method

struct Reading {
  double ok = 0;
  double all = 0;
  double in_flight = 0;
  std::map<double, double> buckets;  // le -> cumulative count
};

std::map<MethodKey, Reading> Read(const std::vector<PromSample>& samples,
                                  absl::string_view side) {
  const std::string handled = absl::StrCat("bevrpc_", side, "_handled_total");
  const std::string bucket =
      absl::StrCat("bevrpc_", side, "_handling_seconds_bucket");
  const std::string in_flight = absl::StrCat("bevrpc_", side, "_in_flight");
  std::map<MethodKey, Reading> out;
  for (const PromSample& s : samples) {
    if (s.name != handled && s.name != bucket && s.name != in_flight) continue;
    MethodKey key{std::string(s.Label("service")),
                  std::string(s.Label("method"))};
    if (key.first.empty() && key.second.empty()) continue;
    Reading& r = out[key];
    if (s.name == handled) {
      r.all += s.value;
      if (s.Label("code") == "OK") r.ok += s.value;
    } else if (s.name == bucket) {
      double le;
      absl::string_view text = s.Label("le");
      if (text == "+Inf") {
        le = INFINITY;
      } else if (!absl::SimpleAtod(text, &le)) {
        continue;
      }
      r.buckets[le] += s.value;
    } else {
      r.in_flight += s.value;
    }
  }
  return out;
}

// after - before, or after alone when the counter restarted.
double Delta(double after, double before) {
  return after >= before ? after - before : after;
}

std::string FormatSeconds(double s) {
  if (std::isnan(s)) return "-";
  if (std::isinf(s)) return ">max";
  if (s < 1e-3) return absl::StrFormat("%.0fus", s * 1e6);
  if (s < 1) return absl::StrFormat("%.2fms", s * 1e3);
  return absl::StrFormat("%.2fs", s);
}

}  // namespace

double BucketQuantile(double q,
                      const std::vector<std::pair<double, double>>& buckets) {
  if (buckets.empty()) return NAN;
  double count = buckets.back().second;
  if (count <= 0) return NAN;
  double rank = q * count;
  double lower = 0, below = 0;
  for (const auto& [le, cumulative] : buckets) {
    if (cumulative >= rank && cumulative > below) {
      if (std::isinf(le)) return lower;
      return lower + (le - lower) * (rank - below) / (cumulative - below);
    }
    lower = le;
    below = cumulative;
  }
  return lower;
}

std::vector<MethodStats> ComputeStats(const std::vector<PromSample>& before,
                                      const std::vector<PromSample>& after,
                                      absl::Duration interval,
                                      absl::string_view side) {
  std::map<MethodKey, Reading> b = Read(before, side);
  std::map<MethodKey, Reading> a = Read(after, side);
  double seconds = std::max(absl::ToDoubleSeconds(interval), 1e-9);
  std::vector<MethodStats> out;
  for (const auto& [key, now] : a) {
    const Reading& then = b[key];
    MethodStats m;
    m.service = key.first;
    m.method = key.second;
    double all = Delta(now.all, then.all);
    double ok = Delta(now.ok, then.ok);
    m.qps = all / seconds;
    m.error_rate = all > 0 ? std::max(0.0, (all - ok) / all) : 0;
    m.in_flight = now.in_flight;
    m.total = static_cast<uint64_t>(now.all);
    std::vector<std::pair<double, double>> buckets;
    bool restarted = !now.buckets.empty() && !then.buckets.empty() &&
                     now.buckets.rbegin()->second <
                         then.buckets.rbegin()->second;
    for (const auto& [le, count] : now.buckets) {
      auto it = then.buckets.find(le);
      double prev = (it == then.buckets.end() || restarted) ? 0 : it->second;
      buckets.emplace_back(le, Delta(count, prev));
    }
    m.p50 = BucketQuantile(0.5, buckets);
    m.p99 = BucketQuantile(0.99, buckets);
    out.push_back(std::move(m));
  }
  return out;
}

std::string FormatStatsTable(const std::vector<MethodStats>& stats) {
  size_t width = 6;
  for (const MethodStats& m : stats) {
    width = std::max(width, m.service.size() + 1 + m.method.size());
  }
  std::string out = absl::StrFormat("%-*s %10s %6s %9s %9s %8s %10s\n",
                                    static_cast<int>(width), "METHOD", "QPS",
                                    "ERR%", "P50", "P99", "INFLIGHT", "TOTAL");
  for (const MethodStats& m : stats) {
    absl::StrAppend(
        &out,
        absl::StrFormat("%-*s %10.1f %6.2f %9s %9s %8.0f %10d\n",
                        static_cast<int>(width),
                        absl::StrCat(m.service, "/", m.method), m.qps,
                        m.error_rate * 100, FormatSeconds(m.p50),
                        FormatSeconds(m.p99), m.in_flight, m.total));
  }
  return out;
}

}  // namespace bevrpc::cli
