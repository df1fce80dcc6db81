#include "rpc/trace/rpcz_store.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace bevrpc::trace {
namespace {

std::shared_ptr<RpczRecord> Record(const RpczStore& store,
                                   const std::string& method,
                                   const TraceContext& trace) {
  std::shared_ptr<RpczRecord> r = store.NewRecord();
  r->sample().method = method;
  r->sample().trace_id = trace.trace_id;
  r->sample().span_id = trace.span_id;
  return r;
}

TEST(RpczStoreTest, KeepsTheNewestMaxSamplesNewestFirst) {
  RpczOptions options;
  options.max_samples = 4;
  RpczStore store(options);
  for (int i = 0; i < 10; ++i) {
    store.Add(Record(store, absl::StrCat("s.S/M", i), TraceContext::NewRoot()));
    EXPECT_EQ(store.size(), std::min(i + 1, 4));
  }
  EXPECT_EQ(store.recorded(), 10u);
  std::vector<RpczSample> samples = store.Snapshot();
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(samples[0].method, "s.S/M9");
  EXPECT_EQ(samples[1].method, "s.S/M8");
  EXPECT_EQ(samples[2].method, "s.S/M7");
  EXPECT_EQ(samples[3].method, "s.S/M6");
}

TEST(RpczStoreTest, FiltersByTraceId) {
  RpczStore store;
  TraceContext a = TraceContext::NewRoot();
  TraceContext b = TraceContext::NewRoot();
  store.Add(Record(store, "s.S/A1", a));
  store.Add(Record(store, "s.S/B", b));
  store.Add(Record(store, "s.S/A2", a.Child()));
  std::vector<RpczSample> only_a = store.Snapshot(&a.trace_id);
  ASSERT_EQ(only_a.size(), 2u);
  EXPECT_EQ(only_a[0].method, "s.S/A2");
  EXPECT_EQ(only_a[1].method, "s.S/A1");
}

TEST(RpczStoreTest, BoundsDownstreamCallsAndCountsTheRest) {
  RpczOptions options;
  options.max_downstream_calls = 3;
  RpczStore store(options);
  std::shared_ptr<RpczRecord> r = Record(store, "s.S/M", TraceContext::NewRoot());
  store.Add(r);
  // Also after the call was stored: a handler may leave calls running.
  for (int i = 0; i < 5; ++i) {
    RpczDownstreamCall call;
    call.method = absl::StrCat("d.D/M", i);
    r->AddDownstream(std::move(call));
  }
  std::vector<RpczSample> samples = store.Snapshot();
  ASSERT_EQ(samples.size(), 1u);
  ASSERT_EQ(samples[0].downstream.size(), 3u);
  EXPECT_EQ(samples[0].downstream[2].method, "d.D/M2");
  EXPECT_EQ(samples[0].downstream_dropped, 2u);
}

TEST(RpczStoreTest, SamplesOneInNPerThread) {
  RpczOptions options;
  options.sample_one_in = 8;
  RpczStore store(options);
  int sampled = 0;
  for (int i = 0; i < 800; ++i) sampled += store.ShouldSample() ? 1 : 0;
  EXPECT_EQ(sampled, 100);
  options.sample_one_in = 1;
  RpczStore every(options);
  EXPECT_TRUE(every.ShouldSample());
  options.sample_one_in = 0;
  RpczStore none(options);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(none.ShouldSample());
  options.sample_one_in = 1;
  options.enabled = false;
  RpczStore off(options);
  EXPECT_FALSE(off.ShouldSample());
  off.Add(Record(off, "s.S/M", TraceContext::NewRoot()));
  EXPECT_EQ(off.size(), 0u);
}

TEST(RpczStoreTest, KeepsFailedAndSlowCalls) {
  RpczOptions options;
  options.keep_slower_than = absl::Milliseconds(50);
  RpczStore store(options);
  EXPECT_FALSE(store.ShouldKeep(absl::StatusCode::kOk, absl::Milliseconds(1)));
  EXPECT_TRUE(store.ShouldKeep(absl::StatusCode::kNotFound,
                               absl::Milliseconds(1)));
  EXPECT_TRUE(store.ShouldKeep(absl::StatusCode::kOk, absl::Milliseconds(50)));
  options.keep_failed = false;
  options.keep_slower_than = absl::InfiniteDuration();
  RpczStore neither(options);
  EXPECT_FALSE(neither.ShouldKeep(absl::StatusCode::kInternal,
                                  absl::Seconds(100)));
}

TEST(RpczStoreTest, ConcurrentAddsAndReadsStayBounded) {
  RpczOptions options;
  options.max_samples = 16;
  RpczStore store(options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store] {
      for (int i = 0; i < 500; ++i) {
        std::shared_ptr<RpczRecord> r =
            Record(store, "s.S/M", TraceContext::NewRoot());
        store.Add(r);
        r->AddDownstream(RpczDownstreamCall{});
        if (i % 50 == 0) {
          EXPECT_LE(store.Snapshot().size(), 16u);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(store.recorded(), 2000u);
  EXPECT_EQ(store.Snapshot().size(), 16u);
}

TEST(RpczStoreTest, TruncatesMessagesOnACharacterBoundary) {
  EXPECT_EQ(TruncateMessage("short"), "short");
  std::string long_ascii(1000, 'x');
  EXPECT_EQ(TruncateMessage(long_ascii).size(), kMaxMessageBytes);
  // "é" is two bytes: 255 'a's then "é" straddles the cut at 256.
  std::string utf8 = std::string(255, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(TruncateMessage(utf8), std::string(255, 'a'));
}

}  // namespace
}  // namespace bevrpc::trace
