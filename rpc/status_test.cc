#include "rpc/status.h"

#include "gtest/gtest.h"

namespace bevrpc {
namespace {

TEST(StatusTest, WireCodesRoundTrip) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status s = StatusFromWire(code, "msg");
    EXPECT_EQ(static_cast<int>(s.code()), code);
    if (code != 0) {
      EXPECT_EQ(s.message(), "msg");
    }
  }
}

TEST(StatusTest, UnknownWireCodeBecomesUnknownAndKeepsTheNumber) {
  absl::Status s = StatusFromWire(99, "odd");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "peer sent unknown status code 99: odd");
  EXPECT_EQ(StatusFromWire(-1, "").code(), absl::StatusCode::kUnknown);
}

TEST(StatusTest, NamesAndParsing) {
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kDeadlineExceeded),
            "DEADLINE_EXCEEDED");
  EXPECT_EQ(StatusCodeName(static_cast<absl::StatusCode>(42)), "CODE_42");
  absl::StatusCode code;
  ASSERT_TRUE(ParseStatusCode("unavailable", &code));
  EXPECT_EQ(code, absl::StatusCode::kUnavailable);
  ASSERT_TRUE(ParseStatusCode("4", &code));
  EXPECT_EQ(code, absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(ParseStatusCode("17", &code));
  EXPECT_FALSE(ParseStatusCode("NOPE", &code));
}

}  // namespace
}  // namespace bevrpc
