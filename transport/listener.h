// Listener: accepts TCP connections on one loop and hands each accepted
// socket to a callback, which typically picks an I/O loop round-robin and
// creates a Connection there.
//
//   auto listener = Listener::Create(loop, addr, {},
//       [&](int fd) { pool->Next()->Post(...adopt fd...); });
//   int port = listener->port();
//
// Threading: Create() and the destructor on the listener loop's thread (or
// before that loop runs); the callback runs on that loop. port() is
// thread-safe.
#ifndef BEVRPC_TRANSPORT_LISTENER_H_
#define BEVRPC_TRANSPORT_LISTENER_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "transport/address.h"
#include "transport/event_loop.h"

struct evconnlistener;

namespace bevrpc::transport {

struct ListenerOptions {
  // listen(2) backlog. Default: 1024.
  int backlog = 1024;
  // SO_REUSEPORT, so several processes can share the port (prefork). Off by
  // default: a second server must not silently bind the same port.
  bool reuse_port = false;
};

class Listener {
 public:
  // Called with each accepted socket; the callee owns `fd`.
  using AcceptCallback = absl::AnyInvocable<void(int fd)>;

  static absl::StatusOr<std::unique_ptr<Listener>> Create(
      EventLoop* loop, const SocketAddress& address,
      const ListenerOptions& options, AcceptCallback on_accept);
  ~Listener();

  // The bound port (useful after binding port 0).
  int port() const { return port_; }
  // Stops accepting; connections already accepted are unaffected.
  void Disable();

 private:
  Listener() = default;
  static void OnAccept(evconnlistener* l, int fd, struct sockaddr* sa,
                       int socklen, void* arg);
  static void OnError(evconnlistener* l, void* arg);

  evconnlistener* listener_ = nullptr;
  AcceptCallback on_accept_;
  int port_ = 0;
  EventLoop* loop_ = nullptr;
  // Re-enables accepting after a transient error such as EMFILE.
  std::unique_ptr<Timer> retry_timer_;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_LISTENER_H_
