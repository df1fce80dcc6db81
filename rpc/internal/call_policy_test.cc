#include "rpc/internal/call_policy.h"

#include "gtest/gtest.h"
#include "rpc/idempotency.h"

namespace bevrpc::internal {
namespace {

RetryPolicy Retry(int attempts) {
  RetryPolicy r;
  r.max_attempts = attempts;
  return r;
}

MethodConfig Entry(std::vector<std::string> names, int retry_attempts,
                   absl::Duration timeout = absl::InfiniteDuration()) {
  MethodConfig m;
  m.names = std::move(names);
  m.timeout = timeout;
  if (retry_attempts > 0) m.retry = Retry(retry_attempts);
  return m;
}

TEST(CallPoliciesTest, MethodBeatsServiceBeatsDefault) {
  ServiceConfig config;
  config.methods.push_back(Entry({"a.S/M"}, 4));
  config.methods.push_back(Entry({"a.S"}, 3));
  config.methods.push_back(Entry({""}, 2));
  auto p = CallPolicies::Create(config, RetryPolicy()).value();
  ASSERT_NE(p->Find("a.S/M"), nullptr);
  EXPECT_EQ(p->Find("a.S/M")->retry->max_attempts, 4);
  EXPECT_EQ(p->Find("a.S/Other")->retry->max_attempts, 3);
  EXPECT_EQ(p->Find("b.T/M")->retry->max_attempts, 2);
}

TEST(CallPoliciesTest, IdempotentMethodsGetTheDefaultRetry) {
  RegisterIdempotency("t.P/Read", Idempotency::kNoSideEffects);
  RegisterIdempotency("t.P/Put", Idempotency::kIdempotent);
  ServiceConfig config;
  config.methods.push_back(Entry({"t.P/Put"}, 1));  // Retries off.
  config.methods.push_back(
      Entry({"t.Q"}, 0, absl::Seconds(1)));  // A timeout only.
  RegisterIdempotency("t.Q/Get", Idempotency::kNoSideEffects);
  auto p = CallPolicies::Create(config, Retry(3)).value();
  ASSERT_NE(p->Find("t.P/Read"), nullptr);
  EXPECT_EQ(p->Find("t.P/Read")->retry->max_attempts, 3);
  EXPECT_EQ(p->Find("t.P/Write"), nullptr);  // Side effects, no entry.
  EXPECT_EQ(p->Find("t.P/Put"), nullptr);    // max_attempts 1.
  const CallPolicy* get = p->Find("t.Q/Get");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->timeout, absl::Seconds(1));
  ASSERT_NE(get->retry, nullptr);
  EXPECT_EQ(get->retry->max_attempts, 3);
  EXPECT_EQ(p->Find("t.Q/Set")->retry, nullptr);
  // The idempotent default turned off.
  auto off = CallPolicies::Create({}, Retry(0)).value();
  EXPECT_EQ(off->Find("t.P/Read"), nullptr);
}

TEST(CallPoliciesTest, AttemptsAreCappedAtFive) {
  ServiceConfig config;
  config.methods.push_back(Entry({"a.S"}, 9));
  auto p = CallPolicies::Create(config, RetryPolicy()).value();
  EXPECT_EQ(p->Find("a.S/M")->retry->max_attempts, 5);
}

TEST(CallPoliciesTest, BackoffIsFullJitterUnderTheCap) {
  RetryRule rule;
  rule.initial_backoff = absl::Milliseconds(100);
  rule.max_backoff = absl::Milliseconds(300);
  rule.multiplier = 2;
  uint64_t rng = 42;
  absl::Duration max_seen[6] = {};
  for (int i = 0; i < 2000; ++i) {
    for (int n = 2; n <= 5; ++n) {
      absl::Duration d = rule.Backoff(n, &rng);
      EXPECT_GE(d, absl::ZeroDuration());
      max_seen[n] = std::max(max_seen[n], d);
    }
  }
  // Caps 100, 200, 300 (max), 300 ms; 2000 draws get close to each.
  EXPECT_LT(max_seen[2], absl::Milliseconds(100));
  EXPECT_GT(max_seen[2], absl::Milliseconds(95));
  EXPECT_LT(max_seen[3], absl::Milliseconds(200));
  EXPECT_GT(max_seen[3], absl::Milliseconds(190));
  EXPECT_LT(max_seen[5], absl::Milliseconds(300));
  EXPECT_GT(max_seen[5], absl::Milliseconds(285));
}

TEST(RetryThrottleTest, StopsRetriesAtHalfAndRecoversWithSuccesses) {
  RetryThrottle t(RetryThrottling{10, 0.5});
  EXPECT_TRUE(t.Allows());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(t.OnFailure());  // 9, 8, 7, 6.
  EXPECT_FALSE(t.OnFailure());                             // 5: stop.
  EXPECT_FALSE(t.Allows());
  for (int i = 0; i < 20; ++i) t.OnFailure();
  EXPECT_EQ(t.milli_tokens(), 0);  // Never below zero.
  for (int i = 0; i < 11; ++i) t.OnSuccess();  // 5.5
  EXPECT_TRUE(t.Allows());
  for (int i = 0; i < 100; ++i) t.OnSuccess();
  EXPECT_EQ(t.milli_tokens(), 10000);  // Never above the maximum.
}

TEST(RetryThrottleTest, ZeroTokensMeansNoThrottling) {
  RetryThrottle t(RetryThrottling{0, 0.1});
  EXPECT_FALSE(t.enabled());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(t.OnFailure());
}

}  // namespace
}  // namespace bevrpc::internal
