// Heap allocations per unary call on the fast path, counted.
//
// A Server with the echo service (callback flavour: answered on the I/O loop)
// and a Channel, each on its own single-loop pool, run closed-loop calls of
// 64-byte messages on one connection, issued from completion callbacks on
// the channel's loop as `bevrpc bench` does, with 1 and with 64 calls in
// flight. After a warm-up (which sizes buffers and fills the call-record and
// message pools) the test counts every allocation each loop thread makes
// over many calls, in two parts:
//
//  - operator new (bevrpc, protobuf, Abseil, the standard library): must be
//    zero per call in the steady state (a bound of 0.01 per call leaves
//    room for a rare container growth, and catches any per-call allocation);
//  - libevent's allocator: evbuffer chains, which libevent frees once
//    drained and allocates again for the next socket read or batched write.
//    They come per read/write, not per call: at most one chain for the read
//    and one for the write of each round trip with 1 in flight (2 per
//    call), and a small fraction of a call with 64 in flight.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "rpc/server_options.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "transport/event_loop.h"
#include "transport/loop_pool.h"
#include "transport/sync.h"
#include "transport/testing/alloc_counter.h"

namespace bevrpc {
namespace {

using transport::testing::ThreadAllocations;
using transport::testing::ThreadLibeventAllocations;

constexpr int64_t kWarmupCalls = 20000;
constexpr int64_t kMeasuredCalls = 100000;
// C++ allocations per call allowed on each loop.
constexpr double kMaxNewPerCall = 0.01;

struct Counts {
  int64_t all = 0;
  int64_t libevent = 0;  // Part of `all`.
  Counts operator-(const Counts& o) const {
    return {all - o.all, libevent - o.libevent};
  }
};

// `loop`'s thread's allocation counts, read on that thread.
Counts AllocationsOn(transport::EventLoop* loop) {
  Notification read;
  Counts counts;
  loop->Post([&] {
    counts = {ThreadAllocations(), ThreadLibeventAllocations()};
    read.Notify();
  });
  read.WaitForNotification();
  return counts;
}

// Closed-loop calls: `in_flight` slots, each re-issued from its completion
// callback (on the channel's loop) until `total` calls have been started.
class ClosedLoop {
 public:
  ClosedLoop(Channel* channel, transport::EventLoop* loop, int in_flight)
      : channel_(channel), loop_(loop), slots_(in_flight) {
    for (Slot& slot : slots_) {
      slot.run = this;
      slot.request.set_message(std::string(64, 'x'));
    }
  }

  // Runs `total` calls and waits for them; returns the first error.
  absl::Status Run(int64_t total) {
    to_start_ = total;
    outstanding_ = 0;
    first_error_ = absl::OkStatus();
    Notification finished;
    finished_ = &finished;
    loop_->Post([this] {
      for (Slot& slot : slots_) Issue(&slot);
    });
    finished.WaitForNotification();
    return first_error_;
  }

 private:
  struct Slot {
    ClosedLoop* run = nullptr;
    echo::EchoRequest request;
    echo::EchoResponse response;
  };

  // On the channel's loop.
  void Issue(Slot* slot) {
    if (to_start_ == 0) return;
    --to_start_;
    ++outstanding_;
    channel_->CallAsync(echo::kEchoMethod, slot->request, &slot->response,
                        options_, [slot](absl::Status s) {
                          slot->run->OnDone(slot, std::move(s));
                        });
  }

  void OnDone(Slot* slot, absl::Status s) {
    --outstanding_;
    if (!s.ok() && first_error_.ok()) first_error_ = std::move(s);
    if (slot->response.message().size() != 64 && first_error_.ok()) {
      first_error_ = absl::InternalError("echoed message has the wrong size");
    }
    Issue(slot);
    if (outstanding_ == 0) finished_->Notify();
  }

  Channel* channel_;
  transport::EventLoop* loop_;
  std::vector<Slot> slots_;
  const CallOptions options_;
  // Touched on the channel's loop only (Run() reads them after the
  // notification, which orders the accesses).
  int64_t to_start_ = 0;
  int64_t outstanding_ = 0;
  absl::Status first_error_;
  Notification* finished_ = nullptr;
};

struct Case {
  int in_flight;
  // libevent buffer-chain allocations per call allowed on each loop.
  double max_libevent_per_call;
};

class SteadyStateTest : public ::testing::TestWithParam<Case> {};

TEST_P(SteadyStateTest, UnaryCallsAllocateNoMemoryPerCall) {
  const Case c = GetParam();
  auto server_loops = transport::LoopPool::Start(1, "alloc-server");
  ASSERT_TRUE(server_loops.ok()) << server_loops.status();
  auto client_loops = transport::LoopPool::Start(1, "alloc-client");
  ASSERT_TRUE(client_loops.ok()) << client_loops.status();
  transport::EventLoop* server_loop = (*server_loops)->loop(0);
  transport::EventLoop* client_loop = (*client_loops)->loop(0);

  ServerOptions server_options;
  server_options.loops = server_loops->get();
  Server server(server_options);
  ASSERT_TRUE(echo::RegisterEchoService(server).ok());
  ASSERT_TRUE(server.Start().ok());

  ChannelOptions channel_options;
  channel_options.loops = client_loops->get();
  auto channel = Channel::Create(absl::StrCat("127.0.0.1:", server.port()),
                                 channel_options);
  ASSERT_TRUE(channel.ok()) << channel.status();

  ClosedLoop load(channel->get(), client_loop, c.in_flight);
  ASSERT_TRUE(load.Run(kWarmupCalls).ok());

  const Counts server_before = AllocationsOn(server_loop);
  const Counts client_before = AllocationsOn(client_loop);
  ASSERT_TRUE(load.Run(kMeasuredCalls).ok());
  const Counts on_server = AllocationsOn(server_loop) - server_before;
  const Counts on_client = AllocationsOn(client_loop) - client_before;

  auto per_call = [](int64_t n) {
    return static_cast<double>(n) / kMeasuredCalls;
  };
  std::printf(
      "%d in flight, %lld calls, allocations per call: server loop %.4f "
      "(libevent %.4f), channel loop %.4f (libevent %.4f)\n",
      c.in_flight, static_cast<long long>(kMeasuredCalls),
      per_call(on_server.all),
      per_call(on_server.libevent), per_call(on_client.all),
      per_call(on_client.libevent));
  EXPECT_LT(per_call(on_server.all - on_server.libevent), kMaxNewPerCall);
  EXPECT_LT(per_call(on_client.all - on_client.libevent), kMaxNewPerCall);
  EXPECT_LE(per_call(on_server.libevent), c.max_libevent_per_call);
  EXPECT_LE(per_call(on_client.libevent), c.max_libevent_per_call);

  channel->reset();
  server.Shutdown(absl::Seconds(1));
}

INSTANTIATE_TEST_SUITE_P(InFlight, SteadyStateTest,
                         ::testing::Values(Case{1, 2.01}, Case{64, 0.5}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::to_string(info.param.in_flight);
                         });

// The counter itself: a test that could not fail would prove nothing.
TEST(AllocationTest, CounterSeesAnAllocation) {
  const int64_t before = ThreadAllocations();
  auto p = std::make_unique<std::string>(100, 'x');
  EXPECT_GE(ThreadAllocations() - before, 2);  // The string and its buffer.
}

}  // namespace
}  // namespace bevrpc

int main(int argc, char** argv) {
  bevrpc::transport::testing::InstallLibeventAllocationCounting();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
