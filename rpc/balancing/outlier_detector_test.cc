#include "rpc/balancing/outlier_detector.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace bevrpc::balancing {
namespace {

using absl::StatusCode;

// The injected clock: moves only when a test says so.
std::atomic<int64_t> fake_now{1'000'000'000};
int64_t FakeNow() { return fake_now.load(); }
void Advance(absl::Duration d) { fake_now += absl::ToInt64Nanoseconds(d); }

// `n` READY endpoints of one channel, each with a detector and one slot's
// window.
struct Fleet {
  explicit Fleet(int n, OutlierDetection options = {}) {
    budget = std::make_shared<EjectionBudget>(options);
    for (int i = 0; i < n; ++i) {
      auto h = std::make_shared<EndpointHealth>(1, &FakeNow);
      h->AddReady(1);
      health.push_back(h);
      detectors.push_back(
          std::make_unique<OutlierDetector>(options, h, budget));
    }
    windows.resize(n);
  }
  void End(int i, StatusCode code, int times = 1) {
    for (int k = 0; k < times; ++k) {
      detectors[i]->OnCallEnded(windows[i], code);
    }
  }
  EndpointState state(int i) const { return health[i]->state(); }
  bool ejected(int i) const { return state(i) == EndpointState::kEjected; }
  absl::Duration left(int i) const { return detectors[i]->ejection_left(); }

  std::shared_ptr<EjectionBudget> budget;
  std::vector<std::shared_ptr<EndpointHealth>> health;
  std::vector<std::unique_ptr<OutlierDetector>> detectors;
  std::vector<OutlierDetector::Window> windows;
};

TEST(OutlierDetectorTest, ClassifiesCodes) {
  for (StatusCode c : {StatusCode::kUnavailable, StatusCode::kDeadlineExceeded,
                       StatusCode::kInternal, StatusCode::kUnknown,
                       StatusCode::kDataLoss}) {
    EXPECT_EQ(ClassifyCall(c), CallOutcome::kFailure) << static_cast<int>(c);
  }
  for (StatusCode c : {StatusCode::kCancelled, StatusCode::kResourceExhausted}) {
    EXPECT_EQ(ClassifyCall(c), CallOutcome::kIgnored) << static_cast<int>(c);
  }
  for (StatusCode c : {StatusCode::kOk, StatusCode::kInvalidArgument,
                       StatusCode::kNotFound, StatusCode::kAlreadyExists,
                       StatusCode::kPermissionDenied,
                       StatusCode::kFailedPrecondition, StatusCode::kAborted,
                       StatusCode::kOutOfRange, StatusCode::kUnimplemented,
                       StatusCode::kUnauthenticated}) {
    EXPECT_EQ(ClassifyCall(c), CallOutcome::kSuccess) << static_cast<int>(c);
  }
}

TEST(OutlierDetectorTest, ConsecutiveUnavailableEjects) {
  Fleet fleet(3);
  fleet.End(0, StatusCode::kUnavailable, 4);
  EXPECT_EQ(fleet.state(0), EndpointState::kReady);
  fleet.End(0, StatusCode::kUnavailable);
  EXPECT_EQ(fleet.state(0), EndpointState::kEjected);
  EXPECT_FALSE(fleet.health[0]->usable());
  EXPECT_EQ(fleet.detectors[0]->ejections(), 1);
  EXPECT_EQ(fleet.left(0), absl::Milliseconds(100));
  EXPECT_EQ(fleet.state(1), EndpointState::kReady);
}

TEST(OutlierDetectorTest, ASuccessResetsTheRunAndOtherCodesDoNot) {
  Fleet fleet(3);
  fleet.End(0, StatusCode::kUnavailable, 4);
  fleet.End(0, StatusCode::kOk);
  fleet.End(0, StatusCode::kUnavailable, 4);
  fleet.End(0, StatusCode::kNotFound);  // A live server's answer.
  fleet.End(0, StatusCode::kUnavailable, 4);
  // Neither counted nor resetting.
  fleet.End(0, StatusCode::kCancelled, 10);
  fleet.End(0, StatusCode::kResourceExhausted, 10);
  fleet.End(0, StatusCode::kInternal);
  EXPECT_EQ(fleet.state(0), EndpointState::kReady);
  fleet.End(0, StatusCode::kUnavailable);
  EXPECT_EQ(fleet.state(0), EndpointState::kEjected);
}

TEST(OutlierDetectorTest, ShortErrorRateEjectsOnlyAfterMinCalls) {
  OutlierDetection options;
  options.consecutive_failures = 0;
  options.min_calls = 60;
  Fleet fleet(3, options);
  // The short average passes 50 % after 35 failures, but counts only from
  // the 60th call.
  fleet.End(0, StatusCode::kInternal, 59);
  EXPECT_EQ(fleet.state(0), EndpointState::kReady);
  fleet.End(0, StatusCode::kInternal);
  EXPECT_EQ(fleet.state(0), EndpointState::kEjected);
}

TEST(OutlierDetectorTest, ShortErrorRateEjectsWhenItPassesTheThreshold) {
  OutlierDetection options;
  options.consecutive_failures = 0;
  options.min_calls = 0;
  options.long_window_error_percent = 100;  // Off.
  Fleet fleet(3, options);
  // The first call at which 1 - (1 - 1/50)^k exceeds 0.5.
  int expected = 0;
  for (double r = 0; r * 100 <= 50; ++expected) r += (1 - r) / 50;
  EXPECT_EQ(expected, 35);
  fleet.End(0, StatusCode::kDeadlineExceeded, expected - 1);
  EXPECT_EQ(fleet.state(0), EndpointState::kReady);
  fleet.End(0, StatusCode::kDeadlineExceeded);
  EXPECT_EQ(fleet.state(0), EndpointState::kEjected);
}

TEST(OutlierDetectorTest, LongErrorRateCatchesASteadyErrorRate) {
  OutlierDetection options;
  options.consecutive_failures = 0;
  Fleet fleet(3, options);
  // One call in three fails: under the short window's 50 %, over the long
  // window's 20 % once the average has climbed.
  int calls = 0;
  while (!fleet.ejected(0) && calls < 3000) {
    fleet.End(0, calls % 3 == 0 ? StatusCode::kUnavailable : StatusCode::kOk);
    ++calls;
  }
  EXPECT_TRUE(fleet.ejected(0));
  EXPECT_GT(calls, 100);  // The long average is slow.
  // One in ten never trips either window.
  for (int i = 0; i < 5000; ++i) {
    fleet.End(1, i % 10 == 0 ? StatusCode::kInternal : StatusCode::kOk);
  }
  EXPECT_EQ(fleet.state(1), EndpointState::kReady);
  EXPECT_EQ(fleet.detectors[1]->ejections(), 0);
}

TEST(OutlierDetectorTest, ReturnsOnProbationAndASuccessEndsIt) {
  Fleet fleet(3);
  fleet.End(0, StatusCode::kUnavailable, 5);
  ASSERT_TRUE(fleet.ejected(0));
  // Calls that end while it is ejected (started before) do not count.
  fleet.End(0, StatusCode::kUnavailable, 20);
  EXPECT_EQ(fleet.detectors[0]->ejections(), 1);
  Advance(absl::Milliseconds(99));
  EXPECT_TRUE(fleet.ejected(0));
  Advance(absl::Milliseconds(1));
  EXPECT_EQ(fleet.state(0), EndpointState::kReady);  // On probation.
  EXPECT_EQ(fleet.left(0), absl::ZeroDuration());
  EXPECT_NE(fleet.health[0]->ejected_until(), 0);
  fleet.End(0, StatusCode::kOk);
  EXPECT_EQ(fleet.health[0]->ejected_until(), 0);  // Probation over.
  // Back to counting runs: one failure does not eject.
  fleet.End(0, StatusCode::kUnavailable);
  EXPECT_EQ(fleet.state(0), EndpointState::kReady);
}

TEST(OutlierDetectorTest, AFailureOnProbationEjectsAgainWithDoubledTime) {
  Fleet fleet(3);
  fleet.End(0, StatusCode::kUnavailable, 5);
  Advance(absl::Milliseconds(100));
  ASSERT_EQ(fleet.state(0), EndpointState::kReady);
  fleet.End(0, StatusCode::kDeadlineExceeded);  // Any failure.
  EXPECT_EQ(fleet.state(0), EndpointState::kEjected);
  EXPECT_EQ(fleet.detectors[0]->ejections(), 2);
  EXPECT_EQ(fleet.left(0), absl::Milliseconds(200));
}

TEST(OutlierDetectorTest, EjectionTimeDoublesUpToTheCap) {
  OutlierDetection options;
  options.max_ejection_time = absl::Seconds(1);
  Fleet fleet(3, options);
  fleet.End(0, StatusCode::kUnavailable, 5);
  std::vector<absl::Duration> lengths = {fleet.left(0)};
  for (int i = 0; i < 5; ++i) {
    Advance(lengths.back());
    fleet.End(0, StatusCode::kUnavailable);  // On probation: at once.
    lengths.push_back(fleet.left(0));
  }
  EXPECT_EQ(lengths, (std::vector<absl::Duration>{
                         absl::Milliseconds(100), absl::Milliseconds(200),
                         absl::Milliseconds(400), absl::Milliseconds(800),
                         absl::Seconds(1), absl::Seconds(1)}));
}

TEST(OutlierDetectorTest, DoublingDecaysBackInService) {
  Fleet fleet(3);
  // Two ejections: the next would be 400 ms.
  fleet.End(0, StatusCode::kUnavailable, 5);
  Advance(absl::Milliseconds(100));
  fleet.End(0, StatusCode::kUnavailable);
  ASSERT_EQ(fleet.left(0), absl::Milliseconds(200));
  Advance(absl::Milliseconds(200));
  fleet.End(0, StatusCode::kOk);
  // One decay interval back in service undoes one doubling.
  Advance(absl::Seconds(10));
  fleet.End(0, StatusCode::kUnavailable, 5);
  EXPECT_EQ(fleet.left(0), absl::Milliseconds(200));
  Advance(absl::Milliseconds(200));
  fleet.End(0, StatusCode::kOk);
  // Two intervals and more: back to the base.
  Advance(absl::Seconds(25));
  fleet.End(0, StatusCode::kUnavailable, 5);
  EXPECT_EQ(fleet.left(0), absl::Milliseconds(100));
  EXPECT_EQ(fleet.detectors[0]->ejections(), 4);
}

TEST(OutlierDetectorTest, NeverEjectsMoreThanTheMaxPercent) {
  Fleet fleet(4);  // 50 % of 4: two.
  for (int i = 0; i < 4; ++i) fleet.End(i, StatusCode::kUnavailable, 5);
  EXPECT_TRUE(fleet.ejected(0));
  EXPECT_TRUE(fleet.ejected(1));
  EXPECT_FALSE(fleet.ejected(2));
  EXPECT_FALSE(fleet.ejected(3));
  EXPECT_TRUE(fleet.health[2]->usable());
  // A refused trip is dropped: the slot counts afresh.
  fleet.End(2, StatusCode::kUnavailable, 4);
  EXPECT_FALSE(fleet.ejected(2));
  // Once 0's time is over, 2 may take its place.
  Advance(absl::Milliseconds(100));
  fleet.End(2, StatusCode::kUnavailable);
  EXPECT_TRUE(fleet.ejected(2));
  EXPECT_FALSE(fleet.ejected(0));
}

TEST(OutlierDetectorTest, ALoneEndpointIsNeverEjected) {
  Fleet fleet(1);
  fleet.End(0, StatusCode::kUnavailable, 100);
  EXPECT_EQ(fleet.state(0), EndpointState::kReady);
  EXPECT_EQ(fleet.detectors[0]->ejections(), 0);
}

TEST(OutlierDetectorTest, AtLeastOneOfTwoOrMoreMayBeEjected) {
  EXPECT_EQ(EjectionBudget::MaxEjected(0, 50), 0);
  EXPECT_EQ(EjectionBudget::MaxEjected(1, 100), 0);
  EXPECT_EQ(EjectionBudget::MaxEjected(2, 0), 1);
  EXPECT_EQ(EjectionBudget::MaxEjected(2, 50), 1);
  EXPECT_EQ(EjectionBudget::MaxEjected(3, 50), 1);
  EXPECT_EQ(EjectionBudget::MaxEjected(4, 50), 2);
  EXPECT_EQ(EjectionBudget::MaxEjected(10, 10), 1);
  EXPECT_EQ(EjectionBudget::MaxEjected(5, 100), 5);
  OutlierDetection options;
  options.max_ejection_percent = 10;
  Fleet fleet(3, options);
  for (int i = 0; i < 3; ++i) fleet.End(i, StatusCode::kUnavailable, 5);
  EXPECT_TRUE(fleet.ejected(0));
  EXPECT_FALSE(fleet.ejected(1));
  EXPECT_FALSE(fleet.ejected(2));
}

TEST(OutlierDetectorTest, ARemovedEndpointLeavesTheBudget) {
  Fleet fleet(3);
  fleet.End(0, StatusCode::kUnavailable, 5);
  ASSERT_TRUE(fleet.ejected(0));
  fleet.detectors[0].reset();  // Removed while ejected.
  fleet.End(1, StatusCode::kUnavailable, 5);
  // Two endpoints left: one may be ejected, and none is any more.
  EXPECT_TRUE(fleet.ejected(1));
}

TEST(OutlierDetectorTest, RejectsNonsenseOptions) {
  EXPECT_TRUE(ValidateOutlierDetection({}).ok());
  OutlierDetection o;
  o.max_ejection_percent = 101;
  EXPECT_EQ(ValidateOutlierDetection(o).code(),
            absl::StatusCode::kInvalidArgument);
  o = {};
  o.max_ejection_time = absl::Milliseconds(10);
  absl::Status s = ValidateOutlierDetection(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("max_ejection_time"), absl::string_view::npos)
      << s;
  o = {};
  o.short_window_calls = 0;
  EXPECT_EQ(ValidateOutlierDetection(o).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bevrpc::balancing
