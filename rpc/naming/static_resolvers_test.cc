#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/naming/file_resolver.h"
#include "rpc/naming/resolvers.h"
#include "rpc/naming/static_resolver.h"
#include "transport/event_loop.h"
#include "transport/sync.h"

namespace bevrpc::naming {
namespace {

using ::bevrpc::CondVar;
using ::bevrpc::Mutex;
using ::bevrpc::MutexLock;

std::vector<std::string> Addresses(const EndpointList& list) {
  std::vector<std::string> out;
  for (const EndpointInfo& e : list) out.push_back(e.address);
  return out;
}

// A loop on its own thread and a resolver on it; updates are queued for
// the test thread.
class ResolverHarness {
 public:
  ResolverHarness() {
    loop_ = transport::EventLoop::Create().value();
    thread_ = std::thread([this] { loop_->Run(); });
  }
  ~ResolverHarness() {
    Notification gone;
    loop_->Post([&] {
      resolver_.reset();
      gone.Notify();
    });
    gone.WaitForNotification();
    loop_->Quit();
    thread_.join();
  }

  absl::Status Start(absl::string_view text, ResolverOptions options = {}) {
    absl::StatusOr<Target> target = ParseTarget(text);
    if (!target.ok()) return target.status();
    absl::StatusOr<std::unique_ptr<Resolver>> r =
        CreateResolver(*target, loop_.get(), options);
    if (!r.ok()) return r.status();
    Notification started;
    loop_->Post([&] {
      resolver_ = *std::move(r);
      resolver_->Start([this](absl::StatusOr<EndpointList> update) {
        MutexLock lock(&mu_);
        updates_.push_back(std::move(update));
        cv_.SignalAll();
      });
      started.Notify();
    });
    started.WaitForNotification();
    return absl::OkStatus();
  }

  // The next update, waiting up to 10 s.
  absl::StatusOr<EndpointList> Next() {
    MutexLock lock(&mu_);
    if (!cv_.WaitUntil(&mu_, absl::Seconds(10),
                       [&] { return !updates_.empty(); })) {
      return absl::DeadlineExceededError("no update within 10 s");
    }
    absl::StatusOr<EndpointList> u = std::move(updates_.front());
    updates_.pop_front();
    return u;
  }
  size_t pending() {
    MutexLock lock(&mu_);
    return updates_.size();
  }

 private:
  std::unique_ptr<transport::EventLoop> loop_;
  std::thread thread_;
  std::unique_ptr<Resolver> resolver_;
  Mutex mu_;
  CondVar cv_;
  std::deque<absl::StatusOr<EndpointList>> updates_;
};

TEST(StaticResolverTest, HostPortResolvesEveryAddress) {
  ResolverHarness h;
  ASSERT_TRUE(h.Start("127.0.0.1:5000").ok());
  absl::StatusOr<EndpointList> list = h.Next();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list), std::vector<std::string>{"127.0.0.1:5000"});
}

TEST(StaticResolverTest, LocalhostGivesOneEndpointPerAddress) {
  absl::StatusOr<EndpointList> list = ResolveHostPort({"localhost", 7});
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_FALSE(list->empty());
  for (const EndpointInfo& e : *list) {
    EXPECT_TRUE(e.address == "127.0.0.1:7" || e.address == "[::1]:7")
        << e.address;
  }
}

TEST(StaticResolverTest, ListKeepsOrderAndDropsDuplicates) {
  ResolverHarness h;
  ASSERT_TRUE(h.Start("list:///127.0.0.2:1,[::1]:2,127.0.0.2:1").ok());
  absl::StatusOr<EndpointList> list = h.Next();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(Addresses(*list),
            (std::vector<std::string>{"127.0.0.2:1", "[::1]:2"}));
}

TEST(StaticResolverTest, UnresolvableHostIsAnErrorNamingTheTarget) {
  absl::StatusOr<Target> t = ParseTarget("no-such-host.invalid:80");
  ASSERT_TRUE(t.ok());
  absl::StatusOr<std::unique_ptr<Resolver>> r =
      NewStaticResolver(*t, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no-such-host.invalid"),
            std::string::npos)
      << r.status();
}

TEST(EndpointFileTest, ParsesFieldsCommentsAndReportsBadLines) {
  ParsedEndpointFile f = ParseEndpointFile(
      "# fleet\n"
      "127.0.0.1:10 weight=3 zone=a id=kv-0 version=2\n"
      "\n"
      "  [::1]:11   # trailing comment\n"
      "127.0.0.1:12 weight=0\n"
      "127.0.0.1:13 colour=blue\n"
      "nonsense\n"
      "127.0.0.1:10\n");
  ASSERT_EQ(f.endpoints.size(), 2u);
  EXPECT_EQ(f.endpoints[0].address, "127.0.0.1:10");
  EXPECT_EQ(f.endpoints[0].weight, 3u);
  EXPECT_EQ(f.endpoints[0].zone, "a");
  EXPECT_EQ(f.endpoints[0].id, "kv-0");
  EXPECT_EQ(f.endpoints[0].version, "2");
  EXPECT_EQ(f.endpoints[1].address, "[::1]:11");
  EXPECT_EQ(f.endpoints[1].weight, 1u);
  ASSERT_EQ(f.errors.size(), 3u);
  EXPECT_EQ(f.errors[0].rfind("line 5: weight", 0), 0u) << f.errors[0];
  EXPECT_EQ(f.errors[1].rfind("line 6: unknown field", 0), 0u) << f.errors[1];
  EXPECT_EQ(f.errors[2].rfind("line 7: ", 0), 0u) << f.errors[2];
}

class FileResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp",
                        "/file_resolver_", getpid());
    mkdir(dir_.c_str(), 0755);
    path_ = dir_ + "/endpoints";
    std::remove(path_.c_str());
  }
  // Atomic replace, as writers should.
  void Write(const std::string& text) {
    std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp);
      out << text;
    }
    ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
  }
  ResolverOptions Fast() {
    ResolverOptions o;
    o.file_poll_interval = absl::Milliseconds(20);
    return o;
  }
  std::string dir_;
  std::string path_;
};

TEST_F(FileResolverTest, ReloadsOnAtomicReplace) {
  Write("127.0.0.1:1\n127.0.0.1:2\n");
  ResolverHarness h;
  ASSERT_TRUE(h.Start("file://" + path_, Fast()).ok());
  absl::StatusOr<EndpointList> first = h.Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Addresses(*first),
            (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"}));
  Write("127.0.0.1:2\n127.0.0.1:3 weight=2\n");
  absl::StatusOr<EndpointList> second = h.Next();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Addresses(*second),
            (std::vector<std::string>{"127.0.0.1:2", "127.0.0.1:3"}));
  EXPECT_EQ((*second)[1].weight, 2u);
}

TEST_F(FileResolverTest, SameContentReportsNothingNew) {
  Write("127.0.0.1:1\n");
  ResolverHarness h;
  ASSERT_TRUE(h.Start("file://" + path_, Fast()).ok());
  ASSERT_TRUE(h.Next().ok());
  Write("# same endpoints, new comment\n127.0.0.1:1\n");
  Write("127.0.0.1:9\n");  // Then a real change: the next update is it.
  absl::StatusOr<EndpointList> next = h.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Addresses(*next), std::vector<std::string>{"127.0.0.1:9"});
}

TEST_F(FileResolverTest, MissingFileIsAnErrorUntilItAppears) {
  ResolverHarness h;
  ASSERT_TRUE(h.Start("file://" + path_, Fast()).ok());
  absl::StatusOr<EndpointList> first = h.Next();
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(first.status().message().find(path_), std::string::npos);
  Write("127.0.0.1:4\n");
  absl::StatusOr<EndpointList> second = h.Next();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(Addresses(*second), std::vector<std::string>{"127.0.0.1:4"});
}

TEST_F(FileResolverTest, KeepsTheLastListWhenTheFileGoes) {
  Write("127.0.0.1:1\n");
  ResolverHarness h;
  ASSERT_TRUE(h.Start("file://" + path_, Fast()).ok());
  ASSERT_TRUE(h.Next().ok());
  ASSERT_EQ(std::remove(path_.c_str()), 0);
  Write("127.0.0.1:5\n");  // Back: the next update is the new list.
  absl::StatusOr<EndpointList> next = h.Next();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Addresses(*next), std::vector<std::string>{"127.0.0.1:5"});
}

}  // namespace
}  // namespace bevrpc::naming
