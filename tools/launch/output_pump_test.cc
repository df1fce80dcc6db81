#include "tools/launch/output_pump.h"

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "transport/sync.h"

namespace bevrpc::launch {
namespace {

class Collector {
 public:
  void Add(uint64_t key, absl::string_view line) {
    MutexLock lock(&mu_);
    lines_.emplace_back(key, std::string(line));
    cv_.SignalAll();
  }
  std::vector<std::pair<uint64_t, std::string>> WaitFor(size_t n) {
    MutexLock lock(&mu_);
    cv_.WaitUntil(&mu_, absl::Seconds(30), [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return lines_.size() >= n;
    });
    return lines_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::vector<std::pair<uint64_t, std::string>> lines_ ABSL_GUARDED_BY(mu_);
};

void WriteAll(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

TEST(OutputPumpTest, SplitsLinesPerStreamAndFlushesAtEof) {
  Collector got;
  OutputPump pump({}, [&](uint64_t k, absl::string_view l) { got.Add(k, l); });
  int a[2], b[2];
  ASSERT_EQ(pipe(a), 0);
  ASSERT_EQ(pipe(b), 0);
  pump.Add(a[0], 1);
  pump.Add(b[0], 2);
  WriteAll(a[1], "one\ntw");
  WriteAll(b[1], "x\n");
  auto lines = got.WaitFor(2);
  WriteAll(a[1], "o\nlast without newline");
  close(a[1]);
  close(b[1]);
  lines = got.WaitFor(4);
  ASSERT_EQ(lines.size(), 4u);
  std::vector<std::string> from_a;
  for (auto& [k, l] : lines) {
    if (k == 1) {
      from_a.push_back(l);
    } else {
      EXPECT_EQ(k, 2u);
      EXPECT_EQ(l, "x");
    }
  }
  EXPECT_EQ(from_a, (std::vector<std::string>{"one", "two",
                                              "last without newline"}));
}

TEST(OutputPumpTest, CutsLinesAtTheBoundAndDropsTheRest) {
  Collector got;
  OutputPump pump({.max_line_bytes = 8},
                  [&](uint64_t k, absl::string_view l) { got.Add(k, l); });
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pump.Add(p[0], 7);
  WriteAll(p[1], std::string(100000, 'a') + "\nshort\n");
  close(p[1]);
  auto lines = got.WaitFor(2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].second, "aaaaaaaa [line truncated]");
  EXPECT_EQ(lines[1].second, "short");
}

}  // namespace
}  // namespace bevrpc::launch
