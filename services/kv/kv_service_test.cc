// KeyValueService through a real Server and the generated KeyValue::Stub.
#include "services/kv/kv_service.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "transport/sync.h"

namespace bevrpc::kv {
namespace {

class KeyValueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.io_threads = 2;
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(server_->RegisterService(&service_).ok());
    ASSERT_TRUE(server_->Start().ok());
    ChannelOptions channel_options;
    channel_options.num_connections = 2;
    auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server_->port()),
                                   channel_options);
    ASSERT_TRUE(channel.ok());
    channel_ = *std::move(channel);
    stub_ = std::make_unique<KeyValue::Stub>(channel_.get());
  }

  absl::StatusOr<PutResponse> Put(const std::string& key,
                                  const std::string& value) {
    PutRequest req;
    req.set_key(key);
    req.set_value(value);
    return stub_->Put(req);
  }

  KeyValueService service_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<KeyValue::Stub> stub_;
};

TEST_F(KeyValueTest, PutThenGet) {
  auto put = Put("color", "blue");
  ASSERT_TRUE(put.ok()) << put.status();
  GetRequest get;
  get.set_key("color");
  auto got = stub_->Get(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->entry().value(), "blue");
  EXPECT_EQ(got->entry().version(), put->entry().version());
}

TEST_F(KeyValueTest, MissingKeyIsNotFound) {
  GetRequest get;
  get.set_key("nope");
  auto got = stub_->Get(get);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "key \"nope\" not found");
  DeleteRequest del;
  del.set_key("nope");
  EXPECT_EQ(stub_->Delete(del).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KeyValueTest, BadKeysAreInvalidArgument) {
  EXPECT_EQ(Put("", "x").status().code(), absl::StatusCode::kInvalidArgument);
  auto s = Put(std::string(2000, 'k'), "x").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "key of 2000 bytes exceeds max_key_bytes 1024");
  ListRequest list;
  list.set_page_token("garbage");
  EXPECT_EQ(stub_->List(list).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KeyValueTest, CompareAndSet) {
  PutRequest create;
  create.set_key("k");
  create.set_value("v1");
  create.set_expected_version(0);  // Only if absent.
  auto first = stub_->Put(create);
  ASSERT_TRUE(first.ok());
  auto again = stub_->Put(create);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("expected_version 0"),
            std::string::npos);

  PutRequest update;
  update.set_key("k");
  update.set_value("v2");
  update.set_expected_version(first->entry().version() + 7);
  EXPECT_EQ(stub_->Put(update).status().code(),
            absl::StatusCode::kFailedPrecondition);
  update.set_expected_version(first->entry().version());
  auto second = stub_->Put(update);
  ASSERT_TRUE(second.ok());
  EXPECT_GT(second->entry().version(), first->entry().version());

  DeleteRequest del;
  del.set_key("k");
  del.set_expected_version(first->entry().version());
  EXPECT_EQ(stub_->Delete(del).status().code(),
            absl::StatusCode::kFailedPrecondition);
  del.set_expected_version(second->entry().version());
  EXPECT_TRUE(stub_->Delete(del).ok());
}

TEST_F(KeyValueTest, ListPagesThroughAPrefixInOrder) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(Put(absl::StrCat("user/", 100 + i), "x").ok());
  }
  ASSERT_TRUE(Put("zzz", "other").ok());
  ASSERT_TRUE(Put("user", "not under user/").ok());
  std::vector<std::string> keys;
  ListRequest req;
  req.set_prefix("user/");
  req.set_page_size(10);
  int pages = 0;
  while (pages < 10) {
    auto page = stub_->List(req);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const Entry& e : page->entries()) keys.push_back(e.key());
    if (page->next_page_token().empty()) break;
    req.set_page_token(page->next_page_token());
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(keys.size(), 25u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(keys.front(), "user/100");
  EXPECT_EQ(keys.back(), "user/124");
}

TEST_F(KeyValueTest, AsyncStubCalls) {
  PutRequest put;
  put.set_key("async");
  put.set_value("yes");
  PutResponse put_resp;
  Notification done;
  absl::Status result;
  stub_->PutAsync(put, &put_resp, CallOptions(), [&](absl::Status s) {
    result = s;
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ASSERT_TRUE(result.ok()) << result;
  EXPECT_EQ(put_resp.entry().value(), "yes");
}

TEST_F(KeyValueTest, ConcurrentCompareAndSetIncrementsAreNeverLost) {
  ASSERT_TRUE(Put("counter", "0").ok());
  constexpr int kThreads = 6, kIncrements = 50;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        for (int attempt = 0; attempt < 1000; ++attempt) {
          GetRequest get;
          get.set_key("counter");
          auto cur = stub_->Get(get);
          if (!cur.ok()) return;
          int n = 0;
          if (!absl::SimpleAtoi(cur->entry().value(), &n)) return;
          PutRequest put;
          put.set_key("counter");
          put.set_value(absl::StrCat(n + 1));
          put.set_expected_version(cur->entry().version());
          auto s = stub_->Put(put).status();
          if (s.ok()) break;
          if (s.code() != absl::StatusCode::kFailedPrecondition) return;
          conflicts++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  GetRequest get;
  get.set_key("counter");
  auto final_value = stub_->Get(get);
  ASSERT_TRUE(final_value.ok());
  EXPECT_EQ(final_value->entry().value(), absl::StrCat(kThreads * kIncrements));
}

}  // namespace
}  // namespace bevrpc::kv
