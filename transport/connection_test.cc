// Tests for Connection.
//
// Like libevent's regress_bufferevent.c, the byte-stream tests run one body
// four ways: over a socketpair (Connection::Adopt on both ends) and over
// Connection::Pair (bufferevent_pair_new), each with defer_callbacks off and
// on. Socket-only behaviour (connect, SIGPIPE) uses real loopback sockets.
//
// Frames on the wire are a 4-byte big-endian length followed by the body.
// Every loop runs on its own thread; every wait is bounded.
#include "transport/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/address.h"
#include "transport/buffer.h"
#include "transport/event_loop.h"
#include "transport/listener.h"
#include "transport/sync.h"
#include "transport/testing/loop_thread.h"

namespace bevrpc::transport {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

// ------------------------------------------------------------- helpers

using ::bevrpc::transport::testing::LoopThread;

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7 + seed) % 26);
  }
  return s;
}

// Body of frame number `i`, `size` bytes long, recognisable in failures.
std::string Body(int i, size_t size) {
  std::string tag = absl::StrCat("#", i, ":");
  if (size <= tag.size()) return tag.substr(0, size);
  return tag + Pattern(size - tag.size(), i);
}

std::string Frame(absl::string_view body) {
  uint32_t len = htonl(static_cast<uint32_t>(body.size()));
  std::string out(reinterpret_cast<const char*>(&len), 4);
  out.append(body.data(), body.size());
  return out;
}

// Bytes needed before the next whole frame can be consumed.
size_t NeedFor(const Buffer& input) {
  if (input.size() < 4) return 4;
  uint32_t len;
  input.Peek(&len, 4);
  return 4 + ntohl(len);
}

// A ConnectionHandler that deframes length-prefixed frames and records
// everything it sees, checking the handler contract as it goes. Callbacks
// run on the loop thread; the test thread reads through the locked getters.
class RecordingHandler : public ConnectionHandler {
 public:
  explicit RecordingHandler(EventLoop* loop) : loop_(loop) {}

  // Knobs, set before Start() and read on the loop thread.
  // Consume a single frame per call, returning what the next one needs even
  // if that is already buffered.
  bool one_frame_per_call = false;
  // Once this many frames have arrived, return 0 ("stop reading").
  size_t return_zero_after_frames = 0;
  // Runs on the loop thread after an OnReadable that consumed frames (with
  // the lock released), e.g. to Close() or PauseReading() from the callback.
  std::function<void(size_t frames_so_far)> after_frames;
  // Set by the test (on the loop thread) while it is inside Close().
  bool in_close = false;

  size_t OnReadable(Buffer& input) override {
    in_readable_ = true;
    const size_t size_at_call = input.size();
    std::vector<std::string> got;
    size_t want;
    while (true) {
      want = NeedFor(input);
      if (input.size() < want) break;
      input.Drain(4);
      got.push_back(input.TakeString(want - 4));
      if (one_frame_per_call) {
        want = NeedFor(input);
        break;
      }
    }
    size_t ret = want;
    size_t frames_so_far;
    {
      MutexLock l(&mu_);
      if (!loop_->IsInLoopThread()) ++off_loop_;
      if (closed_count_ > 0) ++after_close_;
      if (returned_zero_) ++calls_after_zero_;
      ++readable_calls_;
      if (size_at_call < last_returned_) {
        violations_.push_back(absl::StrCat("OnReadable with ", size_at_call,
                                           " bytes after asking for ",
                                           last_returned_));
      }
      if (!got.empty()) {
        ++calls_with_frames_;
        max_frames_in_one_call_ = std::max(max_frames_in_one_call_, got.size());
        events_.push_back("R");
      }
      for (std::string& s : got) frames_.push_back(std::move(s));
      frames_so_far = frames_.size();
      if (return_zero_after_frames != 0 &&
          frames_.size() >= return_zero_after_frames) {
        ret = 0;
        returned_zero_ = true;
      }
      last_returned_ = std::max<size_t>(ret, 1);
      last_want_ = want;
      cv_.SignalAll();
    }
    if (!got.empty() && after_frames) after_frames(frames_so_far);
    in_readable_ = false;
    return ret;
  }

  void OnWritabilityChanged(bool writable) override {
    MutexLock l(&mu_);
    if (!loop_->IsInLoopThread()) ++off_loop_;
    writability_.push_back(writable);
    events_.push_back(writable ? "W1" : "W0");
    cv_.SignalAll();
  }

  // What OnReadClosed() answers: keep the connection open for writing
  // after the peer's EOF.
  bool keep_writing_after_eof = false;

  bool OnReadClosed() override {
    MutexLock l(&mu_);
    events_.push_back("E");
    cv_.SignalAll();
    return keep_writing_after_eof;
  }

  void OnClosed(const absl::Status& why) override {
    bool inline_call = in_close || in_readable_;
    MutexLock l(&mu_);
    if (!loop_->IsInLoopThread()) ++off_loop_;
    if (inline_call) ++closed_inline_;
    ++closed_count_;
    close_status_ = why;
    frames_at_close_ = frames_.size();
    events_.push_back("C");
    cv_.SignalAll();
  }

  // Waits until `pred` (run under the lock) holds. False on timeout.
  bool Await(const std::function<bool(const RecordingHandler&)>& pred,
             absl::Duration timeout = kWait) {
    absl::Time deadline = absl::Now() + timeout;
    MutexLock l(&mu_);
    while (!pred(*this)) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      cv_.WaitWithTimeout(&mu_, left);
    }
    return true;
  }
  bool AwaitFrames(size_t n, absl::Duration timeout = kWait) {
    return Await(
        [n](const RecordingHandler& h) { return h.frames_.size() >= n; },
        timeout);
  }
  bool AwaitReadClosed(absl::Duration timeout = kWait) {
    return Await(
        [](const RecordingHandler& h) {
          return std::find(h.events_.begin(), h.events_.end(), "E") !=
                 h.events_.end();
        },
        timeout);
  }
  bool AwaitClosed(absl::Duration timeout = kWait) {
    return Await([](const RecordingHandler& h) { return h.closed_count_ > 0; },
                 timeout);
  }
  bool AwaitLastWant(size_t want, absl::Duration timeout = kWait) {
    return Await(
        [want](const RecordingHandler& h) { return h.last_want_ == want; },
        timeout);
  }
  bool AwaitWritability(size_t n, absl::Duration timeout = kWait) {
    return Await(
        [n](const RecordingHandler& h) { return h.writability_.size() >= n; },
        timeout);
  }

  std::vector<std::string> frames() const {
    MutexLock l(&mu_);
    return frames_;
  }
  size_t frame_count() const {
    MutexLock l(&mu_);
    return frames_.size();
  }
  int readable_calls() const {
    MutexLock l(&mu_);
    return readable_calls_;
  }
  int calls_with_frames() const {
    MutexLock l(&mu_);
    return calls_with_frames_;
  }
  size_t max_frames_in_one_call() const {
    MutexLock l(&mu_);
    return max_frames_in_one_call_;
  }
  size_t last_want() const {
    MutexLock l(&mu_);
    return last_want_;
  }
  int calls_after_zero() const {
    MutexLock l(&mu_);
    return calls_after_zero_;
  }
  std::vector<bool> writability() const {
    MutexLock l(&mu_);
    return writability_;
  }
  std::string events() const {
    MutexLock l(&mu_);
    return absl::StrJoin(events_, " ");
  }
  int closed_count() const {
    MutexLock l(&mu_);
    return closed_count_;
  }
  absl::Status close_status() const {
    MutexLock l(&mu_);
    return close_status_;
  }
  size_t frames_at_close() const {
    MutexLock l(&mu_);
    return frames_at_close_;
  }

  // Contract violations seen so far; empty when all is well.
  std::string Violations() const {
    MutexLock l(&mu_);
    std::vector<std::string> v = violations_;
    if (off_loop_ != 0)
      v.push_back(absl::StrCat(off_loop_, " callbacks off the loop thread"));
    if (closed_inline_ != 0)
      v.push_back("OnClosed called from inside Close() or OnReadable()");
    if (closed_count_ > 1)
      v.push_back(absl::StrCat("OnClosed called ", closed_count_, " times"));
    if (after_close_ != 0) v.push_back("OnReadable after OnClosed");
    return absl::StrJoin(v, "; ");
  }

 private:
  EventLoop* const loop_;
  bool in_readable_ = false;  // Loop thread only.

  mutable Mutex mu_;
  CondVar cv_;  // Signalled on every change below.
  std::vector<std::string> frames_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> writability_ ABSL_GUARDED_BY(mu_);
  size_t last_returned_ ABSL_GUARDED_BY(mu_) = 1;  // "1 before the first call"
  size_t last_want_ ABSL_GUARDED_BY(mu_) = 0;
  int readable_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int calls_with_frames_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_frames_in_one_call_ ABSL_GUARDED_BY(mu_) = 0;
  bool returned_zero_ ABSL_GUARDED_BY(mu_) = false;
  int calls_after_zero_ ABSL_GUARDED_BY(mu_) = 0;
  int off_loop_ ABSL_GUARDED_BY(mu_) = 0;
  int closed_inline_ ABSL_GUARDED_BY(mu_) = 0;
  int closed_count_ ABSL_GUARDED_BY(mu_) = 0;
  int after_close_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status close_status_ ABSL_GUARDED_BY(mu_);
  size_t frames_at_close_ ABSL_GUARDED_BY(mu_) = 0;
};

// Writes frames [first, first + count) of `body_size` bytes in one Write().
void WriteFrames(Connection* c, int first, int count, size_t body_size) {
  c->Write([&](Buffer& out) {
    for (int i = first; i < first + count; ++i)
      out.Append(Frame(Body(i, body_size)));
  });
}

// Checks that `frames` are frames [0, n) of `body_size` bytes, in order.
void ExpectFrames(const std::vector<std::string>& frames, int n,
                  size_t body_size) {
  ASSERT_EQ(frames.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(frames[i], Body(i, body_size)) << "frame " << i;
  }
}

// ---------------------------------------------------- four-way fixture

enum class Transport { kSocketPair, kBufferEventPair };

struct Variant {
  Transport transport;
  bool defer_callbacks;
};

std::string VariantString(const Variant& v) {
  return absl::StrCat(
      v.transport == Transport::kSocketPair ? "SocketPair" : "BevPair",
      v.defer_callbacks ? "Deferred" : "Immediate");
}

std::string VariantName(const ::testing::TestParamInfo<Variant>& info) {
  return VariantString(info.param);
}

void PrintTo(const Variant& v, std::ostream* os) { *os << VariantString(v); }

class ConnectionTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    lt_ = std::make_unique<LoopThread>();
    ha_ = std::make_unique<RecordingHandler>(loop());
    hb_ = std::make_unique<RecordingHandler>(loop());
  }

  void TearDown() override {
    EXPECT_TRUE(RunOnLoop([&] {
      a_.reset();
      b_.reset();
    }));
    EXPECT_EQ(ha_->Violations(), "") << "handler A";
    EXPECT_EQ(hb_->Violations(), "") << "handler B";
    lt_.reset();
  }

  EventLoop* loop() const { return lt_->loop(); }
  bool RunOnLoop(absl::AnyInvocable<void()> fn) {
    return lt_->RunOnLoop(std::move(fn));
  }

  ConnectionOptions Options() const {
    ConnectionOptions o;
    o.defer_callbacks = GetParam().defer_callbacks;
    return o;
  }

  // Makes a_ and b_, two ends of one byte stream, both with `options`.
  void MakeConnections(const ConnectionOptions& options) {
    absl::Status status;
    ASSERT_TRUE(RunOnLoop([&] {
      if (GetParam().transport == Transport::kSocketPair) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
          status = absl::InternalError(std::strerror(errno));
          return;
        }
        auto a = Connection::Adopt(loop(), fds[0], options);
        auto b = Connection::Adopt(loop(), fds[1], options);
        if (!a.ok() || !b.ok()) {
          status = a.ok() ? b.status() : a.status();
          return;
        }
        a_ = *std::move(a);
        b_ = *std::move(b);
      } else {
        auto pair = Connection::Pair(loop(), options);
        if (!pair.ok()) {
          status = pair.status();
          return;
        }
        a_ = std::move(pair->first);
        b_ = std::move(pair->second);
      }
    }));
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }

  void StartBoth() {
    ASSERT_TRUE(RunOnLoop([&] {
      a_->Start(ha_.get());
      b_->Start(hb_.get());
    }));
  }

  // Lets the loop run for `d`, then waits for one more loop turn.
  void Settle(absl::Duration d = absl::Milliseconds(150)) {
    absl::SleepFor(d);
    ASSERT_TRUE(RunOnLoop([] {}));
  }

  std::unique_ptr<LoopThread> lt_;
  std::unique_ptr<RecordingHandler> ha_;
  std::unique_ptr<RecordingHandler> hb_;
  std::unique_ptr<Connection> a_;
  std::unique_ptr<Connection> b_;
};

INSTANTIATE_TEST_SUITE_P(
    FourWays, ConnectionTest,
    ::testing::Values(Variant{Transport::kSocketPair, false},
                      Variant{Transport::kSocketPair, true},
                      Variant{Transport::kBufferEventPair, false},
                      Variant{Transport::kBufferEventPair, true}),
    VariantName);

TEST_P(ConnectionTest, NewConnectionIsWritableAndOpen) {
  MakeConnections(Options());
  StartBoth();
  bool writable = false, closed = true;
  size_t out = 1;
  ASSERT_TRUE(RunOnLoop([&] {
    writable = a_->writable();
    closed = a_->closed();
    out = a_->output_size();
  }));
  EXPECT_TRUE(writable);
  EXPECT_FALSE(closed);
  EXPECT_EQ(out, 0u);
}

TEST_P(ConnectionTest, FramesOfManySizesArriveWholeAndInOrder) {
  MakeConnections(Options());
  StartBoth();
  // Sizes straddle libevent's 4096-byte reads and the 16 KiB writes.
  const std::vector<size_t> sizes = {
      0, 1, 3, 4, 5, 100, 4091, 4096, 4097, 16383, 16384, 70000, 300000, 7};
  std::vector<std::string> expected;
  for (size_t i = 0; i < sizes.size(); ++i) {
    expected.push_back(Body(static_cast<int>(i), sizes[i]));
    std::string frame = Frame(expected.back());
    ASSERT_TRUE(
        RunOnLoop([&] { a_->Write([&](Buffer& out) { out.Append(frame); }); }));
  }
  ASSERT_TRUE(hb_->AwaitFrames(sizes.size()))
      << "got " << hb_->frame_count() << " of " << sizes.size();
  EXPECT_EQ(hb_->frames(), expected);
}

TEST_P(ConnectionTest, ManyFramesWrittenAtOnceArriveInOneOnReadable) {
  MakeConnections(Options());
  StartBoth();
  constexpr int kFrames = 100;
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 0, kFrames, 10); }));
  ASSERT_TRUE(hb_->AwaitFrames(kFrames)) << "got " << hb_->frame_count();
  ExpectFrames(hb_->frames(), kFrames, 10);
  EXPECT_EQ(hb_->calls_with_frames(), 1);
  EXPECT_EQ(hb_->max_frames_in_one_call(), static_cast<size_t>(kFrames));
}

TEST_P(ConnectionTest, FrameWrittenOneByteAtATimeIsDeliveredOnceComplete) {
  MakeConnections(Options());
  StartBoth();
  const std::string frame = Frame(Body(0, 100));
  for (size_t i = 0; i < frame.size(); ++i) {
    ASSERT_TRUE(RunOnLoop([&] {
      a_->Write([&](Buffer& out) { out.Append(frame.data() + i, 1); });
    }));
    absl::SleepFor(absl::Microseconds(500));
    if (i + 1 < frame.size()) {
      ASSERT_EQ(hb_->frame_count(), 0u) << "frame delivered after " << i + 1
                                        << " of " << frame.size() << " bytes";
    }
  }
  ASSERT_TRUE(hb_->AwaitFrames(1));
  ExpectFrames(hb_->frames(), 1, 100);
  // Watermarks, not per-byte wakeups: at most "1 byte", "header", "frame".
  EXPECT_LE(hb_->readable_calls(), 3);
}

TEST_P(ConnectionTest, LowWatermarkHoldsOnReadableUntilRequestedBytesArrive) {
  MakeConnections(Options());
  StartBoth();
  const std::string frame = Frame(Body(0, 1000));
  ASSERT_TRUE(RunOnLoop(
      [&] { a_->Write([&](Buffer& out) { out.Append(frame.data(), 504); }); }));
  // B reads the header and asks for the whole 1004-byte frame.
  ASSERT_TRUE(hb_->AwaitLastWant(1004)) << "last want " << hb_->last_want();
  const int calls = hb_->readable_calls();
  Settle();
  EXPECT_EQ(hb_->readable_calls(), calls)
      << "OnReadable called with only 504 of 1004 bytes";
  EXPECT_EQ(hb_->frame_count(), 0u);

  ASSERT_TRUE(RunOnLoop([&] {
    a_->Write([&](Buffer& out) { out.Append(frame.data() + 504, 499); });
  }));
  Settle();
  EXPECT_EQ(hb_->readable_calls(), calls) << "called one byte short";
  ASSERT_TRUE(RunOnLoop([&] {
    a_->Write([&](Buffer& out) { out.Append(frame.data() + 1003, 1); });
  }));
  ASSERT_TRUE(hb_->AwaitFrames(1));
  ExpectFrames(hb_->frames(), 1, 1000);
  EXPECT_EQ(hb_->readable_calls(), calls + 1);
}

TEST_P(ConnectionTest, InputSizeCountsPartOfAFrameBeforeItIsDelivered) {
  MakeConnections(Options());
  StartBoth();
  const std::string frame = Frame(Body(0, 1000));
  ASSERT_TRUE(RunOnLoop(
      [&] { a_->Write([&](Buffer& out) { out.Append(frame.data(), 504); }); }));
  ASSERT_TRUE(hb_->AwaitLastWant(1004)) << "last want " << hb_->last_want();
  Settle();
  size_t buffered = 0;
  ASSERT_TRUE(RunOnLoop([&] { buffered = b_->input_size(); }));
  EXPECT_EQ(buffered, 504u);  // Held for the handler, which has not run.

  ASSERT_TRUE(RunOnLoop([&] {
    a_->Write([&](Buffer& out) { out.Append(frame.data() + 504, 500); });
  }));
  ASSERT_TRUE(hb_->AwaitFrames(1));
  ASSERT_TRUE(RunOnLoop([&] { buffered = b_->input_size(); }));
  EXPECT_EQ(buffered, 0u);  // Consumed by the handler.
  ASSERT_TRUE(RunOnLoop([&] {
    b_->Close(absl::CancelledError("test"));
    buffered = b_->input_size();
  }));
  EXPECT_EQ(buffered, 0u);
}

TEST_P(ConnectionTest, FrameLargerThanReadBufferBytesIsDelivered) {
  // The read high watermark grows to what the handler asks for.
  ConnectionOptions options = Options();
  options.read_buffer_bytes = 4096;
  MakeConnections(options);
  StartBoth();
  constexpr size_t kBig = 600 * 1024;
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 0, 3, kBig); }));
  ASSERT_TRUE(hb_->AwaitFrames(3)) << "got " << hb_->frame_count();
  ExpectFrames(hb_->frames(), 3, kBig);
}

// The handler contract: "return the total number of bytes that must be
// buffered before the next call". When that many bytes are already
// buffered, the next call is due without waiting for more input.
TEST_P(ConnectionTest, NextCallComesWhenReturnedSizeIsAlreadyBuffered) {
  MakeConnections(Options());
  hb_->one_frame_per_call = true;
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 0, 3, 20); }));
  EXPECT_TRUE(hb_->AwaitFrames(3, absl::Seconds(2)))
      << "a handler consuming one frame per call got only "
      << hb_->frame_count() << " of 3 frames already buffered";
}

TEST_P(ConnectionTest, ReturningZeroStopsReading) {
  MakeConnections(Options());
  hb_->return_zero_after_frames = 1;
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 0, 1, 20); }));
  ASSERT_TRUE(hb_->AwaitFrames(1));
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 1, 2, 20); }));
  Settle(absl::Milliseconds(200));
  EXPECT_EQ(hb_->calls_after_zero(), 0)
      << "OnReadable called after the handler returned 0";
  EXPECT_EQ(hb_->frame_count(), 1u);
}

TEST_P(ConnectionTest, PauseReadingHoldsInputUntilResume) {
  MakeConnections(Options());
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { b_->PauseReading(); }));
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 0, 5, 100); }));
  Settle(absl::Milliseconds(200));
  EXPECT_EQ(hb_->readable_calls(), 0);
  ASSERT_TRUE(RunOnLoop([&] { b_->ResumeReading(); }));
  ASSERT_TRUE(hb_->AwaitFrames(5));
  ExpectFrames(hb_->frames(), 5, 100);
}

TEST_P(ConnectionTest, ResumeDeliversInputBufferedWhilePaused) {
  // The handler pauses itself after each frame, leaving later frames in the
  // input buffer where no new read event will announce them.
  MakeConnections(Options());
  hb_->one_frame_per_call = true;
  hb_->after_frames = [this](size_t) { b_->PauseReading(); };
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 0, 3, 50); }));
  ASSERT_TRUE(hb_->AwaitFrames(1));
  for (size_t n = 2; n <= 3; ++n) {
    Settle(absl::Milliseconds(50));
    EXPECT_EQ(hb_->frame_count(), n - 1) << "delivered while paused";
    ASSERT_TRUE(RunOnLoop([&] { b_->ResumeReading(); }));
    ASSERT_TRUE(hb_->AwaitFrames(n)) << "resume did not deliver frame " << n;
  }
  ExpectFrames(hb_->frames(), 3, 50);
}

TEST_P(ConnectionTest, DataWrittenBeforePeerStartsIsDelivered) {
  MakeConnections(Options());
  ASSERT_TRUE(RunOnLoop([&] {
    a_->Start(ha_.get());
    WriteFrames(a_.get(), 0, 4, 1000);
  }));
  Settle(absl::Milliseconds(50));
  ASSERT_TRUE(RunOnLoop([&] { b_->Start(hb_.get()); }));
  ASSERT_TRUE(hb_->AwaitFrames(4));
  ExpectFrames(hb_->frames(), 4, 1000);
}

TEST_P(ConnectionTest, BothDirectionsAtOnce) {
  MakeConnections(Options());
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] {
    WriteFrames(a_.get(), 0, 200, 3000);
    WriteFrames(b_.get(), 0, 200, 3000);
  }));
  ASSERT_TRUE(ha_->AwaitFrames(200));
  ASSERT_TRUE(hb_->AwaitFrames(200));
  ExpectFrames(ha_->frames(), 200, 3000);
  ExpectFrames(hb_->frames(), 200, 3000);
}

// Write backpressure: a peer that stops reading makes the writer "not
// writable"; the writer keeps reading (its own unsent output must never
// stop it: two such peers would deadlock), and becomes writable again when
// the peer resumes.
TEST_P(ConnectionTest, WriteBackpressureFollowsThePeer) {
  ConnectionOptions options = Options();
  options.write_high_watermark = 64 * 1024;
  options.write_low_watermark = 16 * 1024;
  options.read_buffer_bytes = 16 * 1024;
  MakeConnections(options);
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { b_->PauseReading(); }));

  // 2 MiB: far more than a socketpair's kernel buffers can absorb.
  constexpr int kFrames = 2048;
  constexpr size_t kBody = 1020;
  bool writable_after_first_burst = true;
  ASSERT_TRUE(RunOnLoop([&] {
    for (int i = 0; i < kFrames; i += 64) WriteFrames(a_.get(), i, 64, kBody);
    writable_after_first_burst = a_->writable();
  }));
  EXPECT_FALSE(writable_after_first_burst);
  EXPECT_EQ(ha_->writability(), std::vector<bool>{false});

  Settle(absl::Milliseconds(100));
  bool writable = true;
  ASSERT_TRUE(RunOnLoop([&] { writable = a_->writable(); }));
  EXPECT_FALSE(writable) << "writable although the peer reads nothing";

  // While A is not writable it still reads: B's frame arrives.
  ASSERT_TRUE(RunOnLoop(
      [&] { b_->Write([&](Buffer& out) { out.Append(Frame("ping")); }); }));
  ASSERT_TRUE(ha_->AwaitFrames(1))
      << "A stopped reading while not writable: " << ha_->events();
  EXPECT_EQ(ha_->frames(), std::vector<std::string>{"ping"});
  ASSERT_TRUE(RunOnLoop([&] { writable = a_->writable(); }));
  EXPECT_FALSE(writable);

  ASSERT_TRUE(RunOnLoop([&] { b_->ResumeReading(); }));
  ASSERT_TRUE(hb_->AwaitFrames(kFrames)) << "got " << hb_->frame_count();
  ExpectFrames(hb_->frames(), kFrames, kBody);
  ASSERT_TRUE(ha_->AwaitWritability(2)) << ha_->events();
  EXPECT_EQ(ha_->writability(), (std::vector<bool>{false, true}));
  EXPECT_EQ(ha_->events(), "W0 R W1");
  ASSERT_TRUE(RunOnLoop([&] { writable = a_->writable(); }));
  EXPECT_TRUE(writable);
}

TEST_P(ConnectionTest, CloseAfterFlushDeliversAllOutputBeforeThePeerSeesClose) {
  ConnectionOptions options = Options();
  options.linger = absl::Seconds(5);
  MakeConnections(options);
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { b_->PauseReading(); }));
  constexpr int kFrames = 1024;
  constexpr size_t kBody = 1020;
  size_t pending = 0;
  ASSERT_TRUE(RunOnLoop([&] {
    WriteFrames(a_.get(), 0, kFrames, kBody);
    a_->CloseAfterFlush();
    a_->CloseAfterFlush();  // Idempotent.
    pending = a_->output_size();
  }));
  EXPECT_GT(pending, 0u);  // The flush really had work to do.
  ASSERT_TRUE(RunOnLoop([&] { b_->ResumeReading(); }));

  ASSERT_TRUE(hb_->AwaitFrames(kFrames)) << "got " << hb_->frame_count();
  ExpectFrames(hb_->frames(), kFrames, kBody);
  ASSERT_TRUE(hb_->AwaitClosed(absl::Seconds(4)))
      << "the peer got all the data but never saw the connection close";
  EXPECT_EQ(hb_->frames_at_close(), static_cast<size_t>(kFrames));
  EXPECT_EQ(hb_->close_status().code(), absl::StatusCode::kUnavailable)
      << hb_->close_status();
  ASSERT_TRUE(ha_->AwaitClosed(absl::Seconds(6)));
  EXPECT_TRUE(ha_->close_status().ok()) << ha_->close_status();
}

TEST_P(ConnectionTest, CloseAfterFlushClosesWithinLingerIfPeerNeverCloses) {
  ConnectionOptions options = Options();
  options.linger = absl::Milliseconds(300);
  MakeConnections(options);
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { b_->PauseReading(); }));  // Never sees EOF.
  absl::Time start;
  ASSERT_TRUE(RunOnLoop([&] {
    WriteFrames(a_.get(), 0, 10, 100);
    start = absl::Now();
    a_->CloseAfterFlush();
  }));
  ASSERT_TRUE(ha_->AwaitClosed(absl::Seconds(5)));
  absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(ha_->close_status().ok()) << ha_->close_status();
  EXPECT_GE(took, absl::Milliseconds(250));
}

// Half-close: the peer shuts down its sending side after its frames. A
// handler that keeps the connection open for writing gets every frame,
// then OnReadClosed(), and can still answer; CloseAfterFlush() then ends
// it at once (the peer's EOF has come) with OK.
TEST_P(ConnectionTest, PeerHalfCloseKeepsTheConnectionOpenForWriting) {
  if (GetParam().transport != Transport::kSocketPair) {
    GTEST_SKIP() << "a bufferevent pair has no half-close";
  }
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ha_->keep_writing_after_eof = true;
  ASSERT_TRUE(RunOnLoop([&] {
    auto a = Connection::Adopt(loop(), fds[0], Options());
    ASSERT_TRUE(a.ok()) << a.status();
    a_ = *std::move(a);
    a_->Start(ha_.get());
  }));
  const std::string request = Frame("one") + Frame("two");
  ASSERT_EQ(write(fds[1], request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  ASSERT_EQ(shutdown(fds[1], SHUT_WR), 0);
  ASSERT_TRUE(ha_->AwaitReadClosed()) << ha_->events();
  EXPECT_EQ(ha_->frames(), (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(ha_->events(), "R E") << "frames first, then the EOF, no close";
  bool read_closed = false;
  ASSERT_TRUE(RunOnLoop([&] {
    read_closed = a_->read_closed();
    a_->Write([&](Buffer& out) { out.Append(Frame("answer")); });
    a_->CloseAfterFlush();
  }));
  EXPECT_TRUE(read_closed);
  // The peer reads the answer, then EOF.
  std::string got;
  char buf[256];
  while (true) {
    ssize_t n = read(fds[1], buf, sizeof(buf));  // Blocking socket.
    if (n <= 0) break;
    got.append(buf, n);
  }
  EXPECT_EQ(got, Frame("answer"));
  ASSERT_TRUE(ha_->AwaitClosed());
  EXPECT_TRUE(ha_->close_status().ok()) << ha_->close_status();
  close(fds[1]);
}

// The default: the peer's EOF closes the connection (UNAVAILABLE).
TEST_P(ConnectionTest, PeerHalfCloseClosesByDefault) {
  if (GetParam().transport != Transport::kSocketPair) {
    GTEST_SKIP() << "a bufferevent pair has no half-close";
  }
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ASSERT_TRUE(RunOnLoop([&] {
    auto a = Connection::Adopt(loop(), fds[0], Options());
    ASSERT_TRUE(a.ok()) << a.status();
    a_ = *std::move(a);
    a_->Start(ha_.get());
  }));
  const std::string request = Frame("only");
  ASSERT_EQ(write(fds[1], request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  ASSERT_EQ(shutdown(fds[1], SHUT_WR), 0);
  ASSERT_TRUE(ha_->AwaitClosed());
  EXPECT_EQ(ha_->frames(), std::vector<std::string>{"only"});
  EXPECT_EQ(ha_->close_status().code(), absl::StatusCode::kUnavailable)
      << ha_->close_status();
  close(fds[1]);
}

TEST_P(ConnectionTest, CloseDeliversOnClosedOnceAndNeverInsideClose) {
  MakeConnections(Options());
  StartBoth();
  bool closed_right_after = false;
  size_t output_after_write = 1;
  ASSERT_TRUE(RunOnLoop([&] {
    WriteFrames(a_.get(), 0, 10, 100);  // Dropped by Close().
    ha_->in_close = true;
    a_->Close(absl::OkStatus());
    a_->Close(absl::CancelledError("second close is a no-op"));
    ha_->in_close = false;
    closed_right_after = a_->closed();
    WriteFrames(a_.get(), 10, 1, 100);  // Ignored after Close().
    output_after_write = a_->output_size();
  }));
  EXPECT_TRUE(closed_right_after);
  EXPECT_EQ(output_after_write, 0u);
  ASSERT_TRUE(ha_->AwaitClosed());
  Settle(absl::Milliseconds(100));
  EXPECT_EQ(ha_->closed_count(), 1);
  EXPECT_TRUE(ha_->close_status().ok()) << ha_->close_status();
}

TEST_P(ConnectionTest, CloseWithStatusDeliversThatStatus) {
  MakeConnections(Options());
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] {
    ha_->in_close = true;
    a_->Close(absl::ResourceExhaustedError("frame too big"));
    ha_->in_close = false;
  }));
  ASSERT_TRUE(ha_->AwaitClosed());
  EXPECT_EQ(ha_->close_status(), absl::ResourceExhaustedError("frame too big"));
}

TEST_P(ConnectionTest, CloseFromInsideOnReadable) {
  MakeConnections(Options());
  hb_->after_frames = [this](size_t) {
    b_->Close(absl::CancelledError("done"));
  };
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 0, 3, 10); }));
  ASSERT_TRUE(hb_->AwaitClosed());
  Settle(absl::Milliseconds(100));
  EXPECT_EQ(hb_->closed_count(), 1);
  EXPECT_EQ(hb_->close_status().code(), absl::StatusCode::kCancelled);
  // More input after the close reaches nobody.
  ASSERT_TRUE(RunOnLoop([&] { WriteFrames(a_.get(), 3, 3, 10); }));
  Settle(absl::Milliseconds(100));
  EXPECT_EQ(hb_->frame_count(), 3u);
}

TEST_P(ConnectionTest, DestroyedBeforeOnClosedRunsNeverCallsIt) {
  MakeConnections(Options());
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] {
    a_->Close(absl::OkStatus());
    a_.reset();  // OnClosed has not run yet; it must not run now.
  }));
  Settle(absl::Milliseconds(100));
  EXPECT_EQ(ha_->closed_count(), 0);
}

TEST_P(ConnectionTest, PeerCloseGivesUnavailable) {
  MakeConnections(Options());
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { b_->Close(absl::OkStatus()); }));
  ASSERT_TRUE(hb_->AwaitClosed());
  EXPECT_TRUE(hb_->close_status().ok());
  ASSERT_TRUE(ha_->AwaitClosed(absl::Seconds(3)))
      << "the peer closed but OnClosed never came";
  EXPECT_EQ(ha_->close_status().code(), absl::StatusCode::kUnavailable)
      << ha_->close_status();
  Settle(absl::Milliseconds(50));
  EXPECT_EQ(ha_->closed_count(), 1);
}

TEST_P(ConnectionTest, PeerDestroyedGivesUnavailable) {
  MakeConnections(Options());
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] { b_.reset(); }));
  ASSERT_TRUE(ha_->AwaitClosed(absl::Seconds(3)))
      << "the peer went away but OnClosed never came";
  EXPECT_EQ(ha_->close_status().code(), absl::StatusCode::kUnavailable)
      << ha_->close_status();
}

TEST_P(ConnectionTest, PeerCloseAfterDataDeliversDataThenUnavailable) {
  MakeConnections(Options());
  StartBoth();
  ASSERT_TRUE(RunOnLoop([&] {
    WriteFrames(b_.get(), 0, 50, 500);
    b_->CloseAfterFlush();
  }));
  ASSERT_TRUE(ha_->AwaitClosed(absl::Seconds(3)))
      << "got " << ha_->frame_count() << " frames but no close";
  EXPECT_EQ(ha_->frames_at_close(), 50u);
  ExpectFrames(ha_->frames(), 50, 500);
  EXPECT_EQ(ha_->close_status().code(), absl::StatusCode::kUnavailable);
}

// ------------------------------------------------ socket-only behaviour

// A loop with a Listener on 127.0.0.1:0 whose accepted sockets become
// Connections on the same loop, each with its own RecordingHandler.
class TcpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lt_ = std::make_unique<LoopThread>();
    absl::Status status;
    ASSERT_TRUE(lt_->RunOnLoop([&] {
      auto listener = Listener::Create(
          loop(), SocketAddress::Parse("127.0.0.1:0").value(), {},
          [this](int fd) {
            auto conn = Connection::Adopt(loop(), fd, ConnectionOptions());
            if (!conn.ok()) {
              ADD_FAILURE() << conn.status();
              return;
            }
            auto handler = std::make_unique<RecordingHandler>(loop());
            (*conn)->Start(handler.get());
            MutexLock l(&mu_);
            server_handlers_.push_back(std::move(handler));
            server_conns_.push_back(*std::move(conn));
            cv_.SignalAll();
          });
      if (!listener.ok()) {
        status = listener.status();
        return;
      }
      listener_ = *std::move(listener);
    }));
    ASSERT_TRUE(status.ok()) << status;
    port_ = listener_->port();
  }

  void TearDown() override {
    EXPECT_TRUE(lt_->RunOnLoop([&] {
      client_.reset();
      MutexLock l(&mu_);
      server_conns_.clear();
      listener_.reset();
    }));
    lt_.reset();
  }

  EventLoop* loop() const { return lt_->loop(); }

  SocketAddress Address() const {
    return SocketAddress::Parse(absl::StrCat("127.0.0.1:", port_)).value();
  }

  bool AwaitServerConns(size_t n) {
    absl::Time deadline = absl::Now() + kWait;
    MutexLock l(&mu_);
    while (server_conns_.size() < n) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      cv_.WaitWithTimeout(&mu_, left);
    }
    return true;
  }
  RecordingHandler* server_handler(size_t i) {
    MutexLock l(&mu_);
    return server_handlers_[i].get();
  }
  Connection* server_conn(size_t i) {
    MutexLock l(&mu_);
    return server_conns_[i].get();
  }

  // Records on_connected calls.
  struct ConnectResult {
    Mutex mu;
    int calls ABSL_GUARDED_BY(mu) = 0;
    int off_loop ABSL_GUARDED_BY(mu) = 0;
    absl::Status status ABSL_GUARDED_BY(mu);
    absl::Time at ABSL_GUARDED_BY(mu);
    Notification first;
  };
  absl::AnyInvocable<void(absl::Status)> Recorder(ConnectResult* r) {
    return [this, r](absl::Status s) {
      MutexLock l(&r->mu);
      if (!loop()->IsInLoopThread()) ++r->off_loop;
      if (++r->calls == 1) {
        r->status = s;
        r->at = absl::Now();
        r->first.Notify();
      }
    };
  }

  std::unique_ptr<LoopThread> lt_;
  std::unique_ptr<Listener> listener_;
  int port_ = 0;
  Mutex mu_;
  CondVar cv_;  // Signalled when a connection is accepted.
  // Handlers outlive connections: connections are cleared first.
  std::vector<std::unique_ptr<RecordingHandler>> server_handlers_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Connection>> server_conns_ ABSL_GUARDED_BY(mu_);
  // Outlives client_, whose on_connected records into it.
  ConnectResult result_;
  std::unique_ptr<RecordingHandler> client_handler_;
  std::unique_ptr<Connection> client_;
};

TEST_F(TcpTest, ConnectToListenerSucceedsAndCarriesFramesBothWays) {
  client_handler_ = std::make_unique<RecordingHandler>(loop());
  ConnectResult& result = result_;
  absl::Status created;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    auto c = Connection::Connect(loop(), Address(), ConnectionOptions(),
                                 absl::Seconds(5), Recorder(&result));
    if (!c.ok()) {
      created = c.status();
      return;
    }
    client_ = *std::move(c);
  }));
  ASSERT_TRUE(created.ok()) << created;
  ASSERT_TRUE(result.first.WaitForNotificationWithTimeout(kWait));
  {
    MutexLock l(&result.mu);
    EXPECT_TRUE(result.status.ok()) << result.status;
    EXPECT_EQ(result.off_loop, 0);
  }
  std::string peer;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    peer = client_->peer();
    client_->Start(client_handler_.get());  // Start() after connecting.
    WriteFrames(client_.get(), 0, 10, 1000);
  }));
  EXPECT_EQ(peer, absl::StrCat("127.0.0.1:", port_));
  ASSERT_TRUE(AwaitServerConns(1));
  RecordingHandler* server = server_handler(0);
  ASSERT_TRUE(server->AwaitFrames(10));
  ExpectFrames(server->frames(), 10, 1000);

  ASSERT_TRUE(lt_->RunOnLoop([&] { WriteFrames(server_conn(0), 0, 7, 2000); }));
  ASSERT_TRUE(client_handler_->AwaitFrames(7));
  ExpectFrames(client_handler_->frames(), 7, 2000);

  absl::SleepFor(absl::Milliseconds(100));
  MutexLock l(&result.mu);
  EXPECT_EQ(result.calls, 1);
  EXPECT_EQ(client_handler_->Violations(), "");
  EXPECT_EQ(server->Violations(), "");
}

TEST_F(TcpTest, StartAndWriteBeforeConnectedAreHonoured) {
  client_handler_ = std::make_unique<RecordingHandler>(loop());
  ConnectResult& result = result_;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    auto c = Connection::Connect(loop(), Address(), ConnectionOptions(),
                                 absl::Seconds(5), Recorder(&result));
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
    client_->Start(client_handler_.get());  // Start() before connecting.
    WriteFrames(client_.get(), 0, 5, 300);
  }));
  ASSERT_TRUE(result.first.WaitForNotificationWithTimeout(kWait));
  {
    MutexLock l(&result.mu);
    EXPECT_TRUE(result.status.ok()) << result.status;
  }
  ASSERT_TRUE(AwaitServerConns(1));
  ASSERT_TRUE(server_handler(0)->AwaitFrames(5));
  ExpectFrames(server_handler(0)->frames(), 5, 300);
}

TEST_F(TcpTest, ConnectToClosedPortGivesUnavailable) {
  // A bound but not listening socket: its port is closed, and nobody else
  // can take it while we hold it.
  int holder = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(holder, 0);
  SocketAddress any = SocketAddress::Parse("127.0.0.1:0").value();
  ASSERT_EQ(bind(holder, any.sa(), any.length), 0);
  int closed_port = SocketAddress::FromSocketName(holder)->port();
  SocketAddress target =
      SocketAddress::Parse(absl::StrCat("127.0.0.1:", closed_port)).value();

  client_handler_ = std::make_unique<RecordingHandler>(loop());
  ConnectResult& result = result_;
  absl::Status created;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    auto c = Connection::Connect(loop(), target, ConnectionOptions(),
                                 absl::Seconds(5), Recorder(&result));
    if (!c.ok()) {
      created = c.status();
      return;
    }
    client_ = *std::move(c);
    client_->Start(client_handler_.get());
  }));
  ASSERT_TRUE(created.ok())
      << "Connect() failed up front, so on_connected was never called: "
      << created;
  ASSERT_TRUE(result.first.WaitForNotificationWithTimeout(kWait));
  absl::SleepFor(absl::Milliseconds(100));
  {
    MutexLock l(&result.mu);
    EXPECT_EQ(result.calls, 1);
    EXPECT_EQ(result.off_loop, 0);
    EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
        << result.status;
    EXPECT_THAT(std::string(result.status.message()),
                HasSubstr(absl::StrCat("127.0.0.1:", closed_port)));
  }
  ASSERT_TRUE(client_handler_->AwaitClosed());
  EXPECT_EQ(client_handler_->close_status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(client_handler_->Violations(), "");
  close(holder);
}

// Makes connects to a loopback port hang: a listening socket with backlog 0
// that is never accepted from, its accept queue already full. Returns the
// port, or 0 if this kernel does not make connects hang that way.
class HangingPort {
 public:
  HangingPort() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    SocketAddress any = SocketAddress::Parse("127.0.0.1:0").value();
    if (listener_ < 0 || bind(listener_, any.sa(), any.length) != 0 ||
        listen(listener_, 0) != 0) {
      return;
    }
    int port = SocketAddress::FromSocketName(listener_)->port();
    SocketAddress target =
        SocketAddress::Parse(absl::StrCat("127.0.0.1:", port)).value();
    for (int i = 0; i < 16; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (fd < 0) return;
      fillers_.push_back(fd);
      if (connect(fd, target.sa(), target.length) == 0) continue;
      if (errno != EINPROGRESS) return;
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 300) == 0) {  // This one hangs: the queue is full.
        port_ = port;
        return;
      }
    }
  }
  ~HangingPort() {
    for (int fd : fillers_) close(fd);
    if (listener_ >= 0) close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

TEST_F(TcpTest, ConnectTimeoutGivesDeadlineExceeded) {
  HangingPort hanging;
  if (hanging.port() == 0) {
    GTEST_SKIP() << "cannot make a loopback connect hang on this kernel";
  }
  SocketAddress target =
      SocketAddress::Parse(absl::StrCat("127.0.0.1:", hanging.port())).value();
  client_handler_ = std::make_unique<RecordingHandler>(loop());
  ConnectResult& result = result_;
  absl::Time start;
  ASSERT_TRUE(lt_->RunOnLoop([&] {
    start = absl::Now();
    auto c = Connection::Connect(loop(), target, ConnectionOptions(),
                                 absl::Milliseconds(300), Recorder(&result));
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
    client_->Start(client_handler_.get());
  }));
  ASSERT_TRUE(result.first.WaitForNotificationWithTimeout(absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(lt_->RunOnLoop([] {}));
  {
    MutexLock l(&result.mu);
    EXPECT_EQ(result.status.code(), absl::StatusCode::kDeadlineExceeded)
        << result.status;
    EXPECT_EQ(result.calls, 1);
    EXPECT_EQ(result.off_loop, 0);
    EXPECT_GE(result.at - start, absl::Milliseconds(250));
    EXPECT_THAT(std::string(result.status.message()),
                HasSubstr(absl::StrCat("127.0.0.1:", hanging.port())));
  }
  ASSERT_TRUE(client_handler_->AwaitClosed());
  EXPECT_EQ(client_handler_->close_status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_handler_->Violations(), "");
}

// A peer that has gone away must surface as OnClosed(UNAVAILABLE), not as a
// SIGPIPE that kills the process. Run in a child process (death-test
// machinery) with SIGPIPE at its default, as in any fresh program.
void WriteToVanishedPeerThenExit() {
  signal(SIGPIPE, SIG_DFL);
  LoopThread* lt = new LoopThread();  // Leaked: the process _Exit()s.
  auto* handler = new RecordingHandler(lt->loop());
  auto* peer_handler = new RecordingHandler(lt->loop());
  std::unique_ptr<Connection> a, b;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::_Exit(3);
  lt->RunOnLoop([&] {
    a = Connection::Adopt(lt->loop(), fds[0], ConnectionOptions()).value();
    b = Connection::Adopt(lt->loop(), fds[1], ConnectionOptions()).value();
    a->Start(handler);
    b->Start(peer_handler);
    a->PauseReading();  // A learns of the peer's exit only by writing.
  });
  lt->RunOnLoop([&] { b.reset(); });
  lt->RunOnLoop([&] { WriteFrames(a.get(), 0, 64, 1000); });
  if (!handler->AwaitClosed(absl::Seconds(5))) std::_Exit(4);
  std::_Exit(
      handler->close_status().code() == absl::StatusCode::kUnavailable ? 0 : 5);
}

TEST(ConnectionSignalTest, WriteToVanishedPeerGivesUnavailableNotSigpipe) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(WriteToVanishedPeerThenExit(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace bevrpc::transport
