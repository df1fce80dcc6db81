// FlowFixture: an in-process Server (echo service plus test methods that
// hold calls until told) and helpers shared by the flow-control, memory
// budget and edge-case tests in this folder.
//
//   class MyTest : public FlowFixture {};
//   TEST_F(MyTest, X) {
//     ServerOptions o;  o.max_connection_memory_bytes = 4 << 20;
//     StartServer(o);
//     auto channel = NewChannel();
//     ... CallAsync(kHold, ...) ...; ASSERT_TRUE(hold().AwaitStarted(3));
//     hold().ReleaseAll();
//   }
//
// Thread-safe where noted; the fixture itself runs on the test thread.
#ifndef BEVRPC_TESTS_E2E_FLOW_CONTROL_FLOW_FIXTURE_H_
#define BEVRPC_TESTS_E2E_FLOW_CONTROL_FLOW_FIXTURE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/method.h"
#include "rpc/server.h"
#include "services/echo/echo.pb.h"
#include "services/echo/echo_service.h"
#include "transport/sync.h"

namespace bevrpc::testing {

inline constexpr char kEcho[] = "bevrpc.echo.Echo/Echo";
// Unary; the handler keeps the call open until ReleaseAll().
inline constexpr char kHold[] = "test.Flow/Hold";
// Sync unary; blocks its worker until ReleaseAll().
inline constexpr char kHoldSync[] = "test.Flow/HoldSync";
// Sync bidi; echoes each message until the client ends its side (an idle
// stream holds its thread meanwhile).
inline constexpr char kIdleBidi[] = "test.Flow/IdleBidi";
// Client streaming; reads nothing until ReleaseAll(), then every message,
// and answers with the count and bytes as "N messages, B bytes".
inline constexpr char kSink[] = "test.Flow/Sink";

// Generous: a guard against hangs, never a performance bound.
inline constexpr absl::Duration kWait = absl::Seconds(60);

// Holds calls until released. Thread-safe.
class HoldGate {
 public:
  void Started() {
    MutexLock lock(&mu_);
    ++started_;
    cv_.SignalAll();
  }
  int started() const {
    MutexLock lock(&mu_);
    return started_;
  }
  // Waits until at least `n` calls have started.
  bool AwaitStarted(int n, absl::Duration timeout = kWait) {
    MutexLock lock(&mu_);
    return cv_.WaitUntil(&mu_, timeout, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return started_ >= n;
    });
  }
  // Keeps `done` until ReleaseAll(); finishes it at once if released.
  void Keep(Completion done) {
    {
      MutexLock lock(&mu_);
      if (!released_) {
        kept_.push_back(std::move(done));
        return;
      }
    }
    std::move(done).Finish(absl::OkStatus());
  }
  void ReleaseAll() {
    std::vector<Completion> kept;
    {
      MutexLock lock(&mu_);
      released_ = true;
      kept.swap(kept_);
      cv_.SignalAll();
    }
    for (Completion& done : kept) std::move(done).Finish(absl::OkStatus());
  }
  bool released() const {
    MutexLock lock(&mu_);
    return released_;
  }
  // Blocks until ReleaseAll() (sync handlers).
  bool WaitReleased(absl::Duration timeout = kWait) {
    MutexLock lock(&mu_);
    return cv_.WaitUntil(&mu_, timeout, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return released_;
    });
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Completion> kept_ ABSL_GUARDED_BY(mu_);
};

// Collects the statuses of async calls. Thread-safe.
class Results {
 public:
  absl::AnyInvocable<void(absl::Status)> Callback() {
    return [this](absl::Status s) {
      MutexLock lock(&mu_);
      statuses_.push_back(std::move(s));
      cv_.SignalAll();
    };
  }
  bool AwaitCount(size_t n, absl::Duration timeout = kWait) {
    MutexLock lock(&mu_);
    return cv_.WaitUntil(&mu_, timeout, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return statuses_.size() >= n;
    });
  }
  std::vector<absl::Status> statuses() const {
    MutexLock lock(&mu_);
    return statuses_;
  }
  size_t Count(absl::StatusCode code) const {
    MutexLock lock(&mu_);
    size_t n = 0;
    for (const absl::Status& s : statuses_) n += s.code() == code;
    return n;
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
};

class FlowFixture : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options) {
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(echo::RegisterEchoService(*server_).ok());
    HoldGate* gate = &gate_;
    ASSERT_TRUE(server_
                    ->RegisterMethod(
                        CallbackMethod<echo::EchoRequest, echo::EchoResponse>(
                            kHold,
                            [gate](ServerContext&, const echo::EchoRequest& req,
                                   echo::EchoResponse* resp, Completion done) {
                              resp->set_message(
                                  absl::StrCat(req.message().size()));
                              gate->Started();
                              gate->Keep(std::move(done));
                            }))
                    .ok());
    ASSERT_TRUE(server_
                    ->RegisterMethod(
                        SyncMethod<echo::EchoRequest, echo::EchoResponse>(
                            kHoldSync,
                            [gate](ServerContext&, const echo::EchoRequest& req,
                                   echo::EchoResponse* resp) {
                              gate->Started();
                              if (!gate->WaitReleased()) {
                                return absl::DeadlineExceededError("never released");
                              }
                              resp->set_message(req.message());
                              return absl::OkStatus();
                            }))
                    .ok());
    ASSERT_TRUE(
        server_
            ->RegisterMethod(
                ClientStreamingSyncMethod<echo::EchoRequest, echo::EchoResponse>(
                    kSink,
                    [gate](ServerContext&,
                           ServerReader<echo::EchoRequest>& reader,
                           echo::EchoResponse* resp) {
                      gate->Started();
                      if (!gate->WaitReleased()) {
                        return absl::DeadlineExceededError("never released");
                      }
                      echo::EchoRequest req;
                      size_t messages = 0, bytes = 0;
                      while (reader.Read(&req)) {
                        ++messages;
                        bytes += req.message().size();
                      }
                      resp->set_message(
                          absl::StrCat(messages, " messages, ", bytes, " bytes"));
                      return absl::OkStatus();
                    }))
            .ok());
    ASSERT_TRUE(
        server_
            ->RegisterMethod(
                BidiStreamingSyncMethod<echo::EchoRequest, echo::EchoResponse>(
                    kIdleBidi,
                    [gate](ServerContext&,
                           ServerReaderWriter<echo::EchoRequest,
                                              echo::EchoResponse>& stream) {
                      gate->Started();
                      echo::EchoRequest req;
                      echo::EchoResponse resp;
                      while (stream.Read(&req)) {
                        resp.set_message(req.message());
                        absl::Status s = stream.WriteBlocking(resp);
                        if (!s.ok()) return s;
                      }
                      return absl::OkStatus();
                    }))
            .ok());
    ASSERT_TRUE(server_->Start().ok());
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  void TearDown() override {
    gate_.ReleaseAll();  // Never leave a handler blocked.
  }

  std::unique_ptr<Channel> NewChannel(ChannelOptions options = {}) {
    auto channel = Channel::Create(address_, options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *std::move(channel) : nullptr;
  }

  HoldGate& gate() { return gate_; }

  // Starts `n` kHold calls of `size` bytes on `channel`; their statuses go
  // to `results`, their responses to `responses` (which must outlive them).
  static void SendHeldCalls(
      Channel& channel, int n, size_t size, Results& results,
      std::vector<std::unique_ptr<echo::EchoResponse>>& responses,
      absl::Duration timeout = kWait) {
    echo::EchoRequest request;
    request.set_message(std::string(size, 'h'));
    CallOptions options;
    options.timeout = timeout;
    for (int i = 0; i < n; ++i) {
      responses.push_back(std::make_unique<echo::EchoResponse>());
      channel.CallAsync(kHold, request, responses.back().get(), options,
                        results.Callback());
    }
  }

  // An echo call on a new connection, served by the server's (first) loop:
  // once it is answered, that loop has had every chance to read whatever
  // waits on its other connections.
  void PingOnAnotherConnection() {
    auto other = NewChannel();
    ASSERT_NE(other, nullptr);
    echo::EchoRequest ping;
    ping.set_message("ping");
    echo::EchoResponse pong;
    ASSERT_TRUE(other->Call(kEcho, ping, &pong).ok());
  }

  HoldGate gate_;
  std::unique_ptr<Server> server_;
  std::string address_;
};

}  // namespace bevrpc::testing

#endif  // BEVRPC_TESTS_E2E_FLOW_CONTROL_FLOW_FIXTURE_H_
