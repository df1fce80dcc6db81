// ShortenerService through real Servers: three in-process kv shards behind a
// list:/// target with ring_hash_strict, the shortener on a fourth server,
// and the generated Shortener::Stub as its client.
#include "services/shortener/shortener_service.h"

#include <array>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "rpc/trace/rpcz_store.h"
#include "rpc/trace/trace_context.h"
#include "services/kv/kv_service.h"
#include "transport/sync.h"

namespace bevrpc::shortener {
namespace {

constexpr int kShards = 3;
constexpr absl::Duration kWait = absl::Seconds(20);

class ShortenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> addresses;
    for (int i = 0; i < kShards; ++i) {
      ServerOptions options;
      options.listen_address = "127.0.0.1:0";
      options.rpcz.sample_one_in = 1;  // /rpcz follows every call.
      kv_servers_[i] = std::make_unique<Server>(options);
      ASSERT_TRUE(kv_servers_[i]->RegisterService(&kv_[i]).ok());
      ASSERT_TRUE(kv_servers_[i]->Start().ok());
      addresses.push_back(absl::StrCat("127.0.0.1:", kv_servers_[i]->port()));
    }
    auto kv = Channel::Create(
        absl::StrCat("list:///", absl::StrJoin(addresses, ",")),
        KvChannelOptions());
    ASSERT_TRUE(kv.ok()) << kv.status();
    kv_channel_ = *std::move(kv);
  }

  // The shortener on its own server, and a client for it.
  void StartShortener(ShortenerOptions options = {}) {
    auto service = ShortenerService::Create(kv_channel_.get(), options);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    ServerOptions server_options;
    server_options.listen_address = "127.0.0.1:0";
    server_options.rpcz.sample_one_in = 1;
    server_ = std::make_unique<Server>(server_options);
    ASSERT_TRUE(server_->RegisterService(service_.get()).ok());
    ASSERT_TRUE(server_->Start().ok());
    auto client = Channel::Create(absl::StrCat("127.0.0.1:", server_->port()));
    ASSERT_TRUE(client.ok());
    client_ = *std::move(client);
    stub_ = std::make_unique<Shortener::Stub>(client_.get());
  }

  void TearDown() override {
    // Server, then service, then the kv channel, then kv (see the header).
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
    stub_.reset();
    client_.reset();
    server_.reset();
    service_.reset();
    kv_channel_.reset();
    for (auto& s : kv_servers_) s.reset();
  }

  absl::StatusOr<std::string> Shorten(const std::string& url,
                                      CallOptions options = {}) {
    ShortenRequest request;
    request.set_url(url);
    absl::StatusOr<ShortenResponse> r = stub_->Shorten(request, options);
    if (!r.ok()) return r.status();
    return r->code();
  }

  absl::StatusOr<std::string> Lookup(const std::string& code,
                                     CallOptions options = {}) {
    LookupRequest request;
    request.set_code(code);
    absl::StatusOr<LookupResponse> r = stub_->Lookup(request, options);
    if (!r.ok()) return r.status();
    return r->url();
  }

  // Which kv shards hold `code`'s key (read directly, not over RPC).
  std::vector<int> ShardsHolding(const std::string& code) {
    std::vector<int> shards;
    for (int i = 0; i < kShards; ++i) {
      kv::GetRequest get;
      get.set_key(KvKey(code));
      kv::GetResponse got;
      if (kv_[i].Get(get, &got).ok()) shards.push_back(i);
    }
    return shards;
  }

  std::array<kv::KeyValueService, kShards> kv_;
  std::array<std::unique_ptr<Server>, kShards> kv_servers_;
  std::unique_ptr<Channel> kv_channel_;
  std::unique_ptr<ShortenerService> service_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> client_;
  std::unique_ptr<Shortener::Stub> stub_;
};

TEST_F(ShortenerTest, ShortenThenLookup) {
  StartShortener();
  absl::StatusOr<std::string> code = Shorten("https://example.com/a?b=c#d");
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, DefaultCode("https://example.com/a?b=c#d", 0));
  EXPECT_EQ(code->size(), 7u);
  EXPECT_TRUE(CheckCode(*code).ok());
  absl::StatusOr<std::string> url = Lookup(*code);
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(*url, "https://example.com/a?b=c#d");
  // Stored once, on one shard, under code/CODE.
  EXPECT_EQ(ShardsHolding(*code).size(), 1u);
}

// One request followed across the shortener -> kv hop: the caller's trace
// id reaches every kv call, and each kv call's parent span is one the
// shortener's /rpcz sample lists as a downstream call.
TEST_F(ShortenerTest, OneTraceAcrossTheKvHop) {
  StartShortener();
  const trace::TraceContext mine = trace::TraceContext::NewRoot();
  CallOptions options;
  options.metadata["traceparent"] = mine.Format();
  ASSERT_TRUE(Shorten("https://traced.example/", options).ok());
  const absl::Time give_up = absl::Now() + kWait;
  while (server_->rpcz().recorded() < 1 && absl::Now() < give_up) {
    std::this_thread::yield();
  }
  std::vector<trace::RpczSample> at_shortener =
      server_->rpcz().Snapshot(&mine.trace_id);
  ASSERT_EQ(at_shortener.size(), 1u);
  const trace::RpczSample& shorten = at_shortener[0];
  EXPECT_EQ(shorten.parent_span_id, mine.span_id);
  ASSERT_FALSE(shorten.downstream.empty());
  std::set<std::string> spans;
  for (const trace::RpczDownstreamCall& d : shorten.downstream) {
    EXPECT_TRUE(absl::StartsWith(d.method, "bevrpc.kv.")) << d.method;
    spans.insert(trace::ToHex(d.span_id));
  }
  EXPECT_EQ(spans.size(), shorten.downstream.size());
  // Every kv call made for it is in one kv server's store, under its span.
  std::set<std::string> parents;
  while (parents.size() < spans.size() && absl::Now() < give_up) {
    parents.clear();
    for (auto& kv : kv_servers_) {
      for (const trace::RpczSample& s : kv->rpcz().Snapshot(&mine.trace_id)) {
        parents.insert(trace::ToHex(s.parent_span_id));
      }
    }
  }
  EXPECT_EQ(parents, spans);
}

TEST_F(ShortenerTest, ShorteningAgainGivesTheSameCode) {
  StartShortener();
  absl::StatusOr<std::string> first = Shorten("http://a.example/");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::string> again = Shorten("http://a.example/");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
  absl::StatusOr<std::string> other = Shorten("http://b.example/");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(*other, *first);

  // Racing first uses of one URL all get one code.
  constexpr int kThreads = 8;
  std::vector<std::string> codes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      absl::StatusOr<std::string> c = Shorten("https://race.example/x");
      codes[t] = c.ok() ? *c : c.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(codes.begin(), codes.end()).size(), 1u)
      << absl::StrJoin(codes, " ");
  EXPECT_EQ(codes[0], DefaultCode("https://race.example/x", 0));
}

// Every URL's first candidate is "Same0"; later ones are "AltN".
std::string CollidingCode(absl::string_view url, uint32_t attempt) {
  return attempt == 0 ? "Same0" : absl::StrCat("Alt", attempt);
}

TEST_F(ShortenerTest, CollidingUrlsGetDifferentCodes) {
  ShortenerOptions options;
  options.code_function = CollidingCode;
  StartShortener(options);
  EXPECT_EQ(Shorten("https://one.example/").value_or("?"), "Same0");
  EXPECT_EQ(Shorten("https://two.example/").value_or("?"), "Alt1");
  // A third URL walks the same sequence past both to a free code.
  EXPECT_EQ(Shorten("https://three.example/").value_or("?"), "Alt2");
  EXPECT_EQ(Lookup("Same0").value_or("?"), "https://one.example/");
  EXPECT_EQ(Lookup("Alt1").value_or("?"), "https://two.example/");
  EXPECT_EQ(Lookup("Alt2").value_or("?"), "https://three.example/");
}

TEST_F(ShortenerTest, CollisionSequenceIsStableAndIdempotent) {
  ShortenerOptions options;
  options.code_function = [](absl::string_view url, uint32_t attempt) {
    return CollidingCode(url, attempt) + std::string(url.substr(8, 3));
  };
  StartShortener(options);
  // Two URLs whose first candidates collide ("Same0abc").
  ASSERT_EQ(Shorten("https://abc.example/1").value_or("?"), "Same0abc");
  ASSERT_EQ(Shorten("https://abc.example/2").value_or("?"), "Alt1abc");
  // Repeats walk the same sequence to the same codes.
  EXPECT_EQ(Shorten("https://abc.example/2").value_or("?"), "Alt1abc");
  EXPECT_EQ(Shorten("https://abc.example/1").value_or("?"), "Same0abc");
  EXPECT_EQ(Lookup("Same0abc").value_or("?"), "https://abc.example/1");
  EXPECT_EQ(Lookup("Alt1abc").value_or("?"), "https://abc.example/2");
}

TEST_F(ShortenerTest, AllCandidatesTakenIsResourceExhausted) {
  ShortenerOptions options;
  options.max_code_attempts = 3;
  options.code_function = [](absl::string_view, uint32_t attempt) {
    return absl::StrCat("Taken", attempt % 3);
  };
  StartShortener(options);
  ASSERT_TRUE(Shorten("https://1.example/").ok());
  ASSERT_TRUE(Shorten("https://2.example/").ok());
  ASSERT_TRUE(Shorten("https://3.example/").ok());
  absl::Status s = Shorten("https://4.example/").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(),
            "no free code for url \"https://4.example/\": all 3 candidate "
            "codes (max_code_attempts) are taken by other URLs");
  // Nothing of the refused URL was stored, and the others are intact.
  EXPECT_EQ(Lookup("Taken0").value_or("?"), "https://1.example/");
  EXPECT_EQ(Lookup("Taken2").value_or("?"), "https://3.example/");
}

TEST_F(ShortenerTest, BadCodeFunctionIsInternal) {
  ShortenerOptions options;
  options.code_function = [](absl::string_view, uint32_t) {
    return std::string("not/a/code");
  };
  StartShortener(options);
  absl::Status s = Shorten("https://x.example/").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(s.message(),
            "code_function: code \"not/a/code\" is not 1 to 16 characters of "
            "[0-9A-Za-z]");
}

TEST_F(ShortenerTest, BadUrlsAreInvalidArgumentNamingTheField) {
  ShortenerOptions options;
  options.max_url_bytes = 40;
  StartShortener(options);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "url is empty"},
      {"https://example.com/" + std::string(21, 'x'),
       "url of 41 bytes exceeds max_url_bytes 40"},
      {"ftp://example.com/", "url \"ftp://example.com/\" does not start with "
                             "http:// or https://"},
      {"example.com", "url \"example.com\" does not start with http:// or "
                      "https://"},
      {"https:///path", "url \"https:///path\" has no host"},
      {"https://", "url \"https://\" has no host"},
      {"http://a b/", "url has a space or control character at byte 8"},
      {"http://ab/\n", "url has a space or control character at byte 10"},
  };
  for (const auto& [url, message] : cases) {
    absl::Status s = Shorten(url).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_EQ(s.message(), message) << url;
  }
  // Upper-case schemes and UTF-8 are fine.
  EXPECT_TRUE(Shorten("HTTPS://b\xc3\xbc" "cher.example/").ok());
}

TEST_F(ShortenerTest, NonUtf8UrlIsInvalidArgument) {
  EXPECT_EQ(CheckUrl("http://a/\xff", 100).message(),
            "url is not valid UTF-8 (byte 9)");
  EXPECT_EQ(CheckUrl("http://a/\xc0\xaf", 100).message(),
            "url is not valid UTF-8 (byte 9)")
      << "overlong encodings are not UTF-8";
  EXPECT_EQ(CheckUrl("http://a/\xed\xa0\x80", 100).message(),
            "url is not valid UTF-8 (byte 9)")
      << "surrogates are not UTF-8";
  EXPECT_TRUE(CheckUrl("http://a/\xf0\x9f\x98\x80", 100).ok());
  // Over the wire protobuf refuses a proto3 string that is not UTF-8
  // before the handler sees it; either way the caller gets
  // INVALID_ARGUMENT and nothing is stored.
  StartShortener();
  EXPECT_EQ(Shorten("http://a/\xff").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ShardsHolding(DefaultCode("http://a/\xff", 0)).empty());
}

TEST_F(ShortenerTest, BadCodesAreInvalidArgumentAndUnknownOnesNotFound) {
  StartShortener();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "code is empty"},
      {"abc-def", "code \"abc-def\" is not 1 to 16 characters of [0-9A-Za-z]"},
      {"0123456789abcdefg",
       "code \"0123456789abcdefg\" is not 1 to 16 characters of [0-9A-Za-z]"},
      {"../x", "code \"../x\" is not 1 to 16 characters of [0-9A-Za-z]"},
  };
  for (const auto& [code, message] : cases) {
    absl::Status s = Lookup(code).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << code;
    EXPECT_EQ(s.message(), message) << code;
  }
  absl::Status s = Lookup("Nope123").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "code \"Nope123\" not found");
}

TEST_F(ShortenerTest, KeysLandOnTheirShardsAndWaitForThem) {
  StartShortener();
  std::vector<std::string> codes;
  std::array<std::vector<std::string>, kShards> on_shard;
  for (int i = 0; i < 60; ++i) {
    absl::StatusOr<std::string> code =
        Shorten(absl::StrCat("https://shard.example/", i));
    ASSERT_TRUE(code.ok()) << code.status();
    std::vector<int> shards = ShardsHolding(*code);
    ASSERT_EQ(shards.size(), 1u) << *code;
    on_shard[shards[0]].push_back(*code);
    codes.push_back(*code);
  }
  for (int i = 0; i < kShards; ++i) {
    EXPECT_FALSE(on_shard[i].empty()) << "shard " << i << " got no key";
  }
  // With shard 1 down its keys wait for it (DEADLINE_EXCEEDED), never
  // landing on another shard (which would answer NOT_FOUND); the other
  // shards' keys are served as before.
  kv_servers_[1]->Shutdown(absl::ZeroDuration());
  CallOptions quick;
  quick.timeout = absl::Milliseconds(300);
  for (int i = 0; i < kShards; ++i) {
    for (const std::string& code : on_shard[i]) {
      absl::StatusOr<std::string> url = Lookup(code, quick);
      if (i == 1) {
        EXPECT_EQ(url.status().code(), absl::StatusCode::kDeadlineExceeded)
            << code << ": " << url.status();
      } else {
        EXPECT_TRUE(url.ok()) << code << ": " << url.status();
      }
    }
  }
}

TEST_F(ShortenerTest, IncomingDeadlineReachesTheKvCall) {
  ShortenerOptions options;
  options.kv_timeout = absl::Hours(1);  // Only the caller's deadline ends it.
  StartShortener(options);
  for (auto& s : kv_servers_) s->Shutdown(absl::ZeroDuration());
  CallOptions call;
  call.timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  absl::Status shorten = Shorten("https://slow.example/", call).status();
  absl::Duration shorten_took = absl::Now() - start;
  start = absl::Now();
  absl::Status lookup = Lookup("Abc1234", call).status();
  absl::Duration lookup_took = absl::Now() - start;
  EXPECT_EQ(shorten.code(), absl::StatusCode::kDeadlineExceeded) << shorten;
  EXPECT_EQ(lookup.code(), absl::StatusCode::kDeadlineExceeded) << lookup;
  // Not before the deadline; and well before kv_timeout (an hour).
  EXPECT_GE(shorten_took, absl::Milliseconds(299));
  EXPECT_LT(shorten_took, absl::Minutes(1));
  EXPECT_GE(lookup_took, absl::Milliseconds(299));
  EXPECT_LT(lookup_took, absl::Minutes(1));
  // Both calls ended on the shortener too, not only at the client.
  absl::Time deadline = absl::Now() + kWait;
  while (server_->calls_in_flight() != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(server_->calls_in_flight(), 0u);
}

TEST_F(ShortenerTest, KvTimeoutBoundsCallsWithoutADeadline) {
  ShortenerOptions options;
  options.kv_timeout = absl::Milliseconds(300);
  StartShortener(options);
  for (auto& s : kv_servers_) s->Shutdown(absl::ZeroDuration());
  absl::Time start = absl::Now();
  absl::Status s = Lookup("Abc1234").status();  // No deadline of its own.
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "kv Get of \"code/Abc1234\": "))
      << s;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(299));
}

TEST_F(ShortenerTest, CallerCancelEndsTheKvCall) {
  ShortenerOptions options;
  options.kv_timeout = absl::Hours(1);
  StartShortener(options);
  for (auto& s : kv_servers_) s->Shutdown(absl::ZeroDuration());
  LookupRequest request;
  request.set_code("Abc1234");
  LookupResponse response;
  Notification done;
  absl::Status result;
  CallHandle call = stub_->LookupAsync(request, &response, CallOptions(),
                                       [&](absl::Status s) {
                                         result = s;
                                         done.Notify();
                                       });
  // Wait until the shortener holds the call, then cancel it.
  absl::Time deadline = absl::Now() + kWait;
  while (server_->calls_in_flight() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(server_->calls_in_flight(), 1u);
  client_->Cancel(call);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled) << result;
  while (server_->calls_in_flight() != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(server_->calls_in_flight(), 0u);
}

TEST_F(ShortenerTest, ShutdownWhileWaitingForKvIsClean) {
  ShortenerOptions options;
  options.kv_timeout = absl::Hours(1);
  StartShortener(options);
  for (auto& s : kv_servers_) s->Shutdown(absl::ZeroDuration());
  constexpr int kCalls = 4;
  std::atomic<int> unavailable{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      absl::Status s =
          i % 2 ? Lookup("Abc1234").status()
                : Shorten(absl::StrCat("https://x.example/", i)).status();
      if (s.code() == absl::StatusCode::kUnavailable) ++unavailable;
    });
  }
  absl::Time deadline = absl::Now() + kWait;
  while (server_->calls_in_flight() < kCalls && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(server_->calls_in_flight(), static_cast<size_t>(kCalls));
  // The calls' kv calls are cancelled with them; their callbacks then run
  // on the kv channel while (or after) the server's loops go away.
  server_->Shutdown(absl::Milliseconds(100));
  for (auto& t : threads) t.join();
  EXPECT_EQ(unavailable.load(), kCalls);
  server_.reset();
  service_.reset();
  kv_channel_.reset();
}

TEST(ShortenerCreateTest, BadOptionsAreInvalidArgument) {
  auto channel = Channel::Create("127.0.0.1:1");
  ASSERT_TRUE(channel.ok());
  ShortenerOptions options;
  options.max_url_bytes = 0;
  EXPECT_EQ(ShortenerService::Create(channel->get(), options).status().message(),
            "max_url_bytes must be 1 to 1048576 (kv's value limit)");
  options = {};
  options.max_code_attempts = 65;
  EXPECT_EQ(ShortenerService::Create(channel->get(), options).status().message(),
            "max_code_attempts must be 1 to 64");
  options = {};
  options.kv_timeout = absl::ZeroDuration();
  EXPECT_EQ(ShortenerService::Create(channel->get(), options).status().message(),
            "kv_timeout must be positive");
  options = {};
  options.code_function = nullptr;
  EXPECT_EQ(ShortenerService::Create(channel->get(), options).status().message(),
            "code_function is null");
  EXPECT_EQ(ShortenerService::Create(nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DefaultCodeTest, StableBase62AndDifferentPerAttempt) {
  // Fixed values: every replica and build must derive the same codes.
  EXPECT_EQ(DefaultCode("https://example.com/a", 0), "PTlGpJh");
  EXPECT_NE(DefaultCode("https://example.com/a", 1),
            DefaultCode("https://example.com/a", 0));
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string code = DefaultCode(absl::StrCat("https://e.example/", i), 0);
    EXPECT_TRUE(CheckCode(code).ok()) << code;
    EXPECT_EQ(code.size(), 7u);
    seen.insert(code);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace bevrpc::shortener
