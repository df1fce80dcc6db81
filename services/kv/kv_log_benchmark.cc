// Put throughput of KeyValueService per fsync policy (not a test): in
// memory, then --data_dir with always / interval / never, each with 1 and
// 16 writer threads calling Put() (which waits until the write is logged as
// the policy promises; with several threads one fdatasync covers a group).
//
//   bazel run -c opt //services/kv:kv_log_benchmark -- [DIR] [SECONDS]
//
// DIR (default $TMPDIR or /tmp) should be on the disk you care about: a
// tmpfs makes fdatasync free.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/kv/kv_service.h"

namespace bevrpc::kv {
namespace {

// Runs `threads` threads of Puts (100-byte values, 10k keys each) for
// `seconds`; returns Puts per second.
double Run(KeyValueService& kv, int threads, double seconds) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      PutRequest req;
      req.set_value(std::string(100, 'v'));
      PutResponse resp;
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        req.set_key(absl::StrCat("t", t, "k", n % 10000));
        if (!kv.Put(req, &resp).ok()) {
          std::fprintf(stderr, "Put failed\n");
          std::exit(1);
        }
        ++n;
      }
      total.fetch_add(n);
    });
  }
  absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(seconds));
  stop.store(true);
  for (auto& w : workers) w.join();
  return total.load() / absl::ToDoubleSeconds(absl::Now() - start);
}

int Main(int argc, char** argv) {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = argc > 1 ? argv[1] : (tmp != nullptr ? tmp : "/tmp");
  double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  std::string dir = absl::StrCat(base, "/kv_log_benchmark.", getpid());
  std::printf("data dir %s, %.1f s per run, 100-byte values\n", dir.c_str(),
              seconds);
  std::printf("%-10s %8s %14s\n", "policy", "threads", "puts/s");
  for (int threads : {1, 16}) {
    KeyValueService memory;
    std::printf("%-10s %8d %14.0f\n", "memory", threads,
                Run(memory, threads, seconds));
  }
  for (FsyncPolicy policy :
       {FsyncPolicy::kAlways, FsyncPolicy::kInterval, FsyncPolicy::kNever}) {
    for (int threads : {1, 16}) {
      std::string cmd = absl::StrCat("rm -rf '", dir, "'");
      if (std::system(cmd.c_str()) != 0) return 1;
      PersistOptions options;
      options.data_dir = dir;
      options.fsync = policy;
      options.log_message = [](const std::string&) {};
      auto kv = KeyValueService::Open({}, std::move(options));
      if (!kv.ok()) {
        std::fprintf(stderr, "%s\n", kv.status().ToString().c_str());
        return 1;
      }
      double rate = Run(**kv, threads, seconds);
      std::printf("%-10s %8d %14.0f\n",
                  std::string(FsyncPolicyName(policy)).c_str(), threads, rate);
    }
  }
  std::string cmd = absl::StrCat("rm -rf '", dir, "'");
  return std::system(cmd.c_str()) == 0 ? 0 : 1;
}

}  // namespace
}  // namespace bevrpc::kv

int main(int argc, char** argv) { return bevrpc::kv::Main(argc, argv); }
