// An existing backend that embeds bevrpc: it already has its own event loop
// (a thread it runs, with its own timers) and adds, in a few lines, a bevrpc
// server on that same loop and a client to another service (the key-value
// store), which it calls from its own timer.
//
//   backend --kv=127.0.0.1:7000 [--port=0]
//
// Prints "listening on 127.0.0.1:PORT"; every --tick_ms it writes its
// heartbeat count to key "backend/heartbeat" in the kv service; on SIGTERM
// it shuts everything down and exits 0.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <functional>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "services/builtin/reflection_service.h"
#include "services/echo/echo_service.h"
#include "services/kv/kv.bevrpc.h"
#include "transport/event_loop.h"
#include "transport/loop_pool.h"
#include "transport/sync.h"

ABSL_FLAG(std::string, kv, "", "address of the kv service (host:port)");
ABSL_FLAG(int, port, 0, "port for this backend's own bevrpc server");
ABSL_FLAG(int, tick_ms, 100, "how often the backend's own timer fires");

namespace {

// The application as it was before bevrpc: one loop thread with a timer.
class Backend {
 public:
  explicit Backend(bevrpc::transport::EventLoop* loop)
      : loop_(loop), tick_(loop) {}

  // Starts the timer on the loop thread; `on_tick` runs there.
  void StartTicking(absl::Duration every, std::function<void(int)> on_tick) {
    every_ = every;
    on_tick_ = std::move(on_tick);
    loop_->Post([this] { Arm(); });
  }

  // Stops the timer and waits until no tick can run any more. From any
  // thread but the loop's.
  void StopTicking() {
    bevrpc::Notification stopped;
    loop_->Post([this, &stopped] {
      tick_.Cancel();
      stopped.Notify();
    });
    stopped.WaitForNotification();
  }

 private:
  void Arm() {
    tick_.Start(every_, [this] {
      on_tick_(++ticks_);
      Arm();
    });
  }

  bevrpc::transport::EventLoop* loop_;
  bevrpc::transport::Timer tick_;
  absl::Duration every_;
  std::function<void(int)> on_tick_;
  int ticks_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  // The application's own loop and thread.
  auto app_loop = bevrpc::transport::EventLoop::Create().value();
  std::thread app_thread([&] { app_loop->Run(); });
  Backend backend(app_loop.get());

  // [START embed]
  // bevrpc runs on the application's loop: no threads of its own.
  auto loops = bevrpc::transport::LoopPool::Borrow({app_loop.get()});

  bevrpc::ServerOptions server_options;
  server_options.listen_address =
      absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port));
  server_options.loops = loops.get();
  bevrpc::Server server(server_options);
  bevrpc::echo::EchoService echo;
  absl::Status s = server.RegisterService(&echo);
  if (s.ok()) s = bevrpc::builtin::AddReflection(server);
  if (s.ok()) s = server.Start();

  bevrpc::ChannelOptions channel_options;
  channel_options.loops = loops.get();
  auto kv_channel =
      bevrpc::Channel::Create(absl::GetFlag(FLAGS_kv), channel_options);
  // [END embed]
  if (!s.ok() || !kv_channel.ok()) {
    std::cerr << "backend: " << (s.ok() ? kv_channel.status() : s) << "\n";
    app_loop->Quit();
    app_thread.join();
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << server.port() << std::endl;

  // [START call]
  // From the application's own timer, on its loop: an async call.
  bevrpc::kv::KeyValue::Stub kv(kv_channel->get());
  absl::Duration every = absl::Milliseconds(absl::GetFlag(FLAGS_tick_ms));
  backend.StartTicking(every, [&kv](int n) {
    bevrpc::kv::PutRequest put;  // Serialized by PutAsync() at once.
    put.set_key("backend/heartbeat");
    put.set_value(absl::StrCat(n));
    auto reply = std::make_shared<bevrpc::kv::PutResponse>();
    kv.PutAsync(put, reply.get(), {}, [reply](absl::Status s) {
      if (!s.ok()) std::cerr << "backend: heartbeat failed: " << s << "\n";
    });
  });
  // [END call]

  int sig = 0;
  sigwait(&stop, &sig);
  // The timer calls into the kv channel: stop it before the channel goes.
  backend.StopTicking();
  kv_channel->reset();
  server.Shutdown(absl::Seconds(2));
  app_loop->Quit();
  app_thread.join();
  return 0;
}
