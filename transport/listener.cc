#include "transport/listener.h"

#include <event2/listener.h>
#include <event2/util.h>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc::transport {

absl::StatusOr<std::unique_ptr<Listener>> Listener::Create(
    EventLoop* loop, const SocketAddress& address,
    const ListenerOptions& options, AcceptCallback on_accept) {
  std::unique_ptr<Listener> l(new Listener());
  l->loop_ = loop;
  l->on_accept_ = std::move(on_accept);
  l->retry_timer_ = std::make_unique<Timer>(loop);
  unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                   LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_THREADSAFE;
  if (options.reuse_port) flags |= LEV_OPT_REUSEABLE_PORT;
  l->listener_ = evconnlistener_new_bind(
      loop->base(), &Listener::OnAccept, l.get(), flags, options.backlog,
      address.sa(), static_cast<int>(address.length));
  if (l->listener_ == nullptr) {
    int err = errno;
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", address.ToString(), ": ",
        evutil_socket_error_to_string(err)));
  }
  evconnlistener_set_error_cb(l->listener_, &Listener::OnError);
  absl::StatusOr<SocketAddress> bound =
      SocketAddress::FromSocketName(evconnlistener_get_fd(l->listener_));
  if (!bound.ok()) return bound.status();
  l->port_ = bound->port();
  return l;
}

Listener::~Listener() {
  retry_timer_.reset();
  if (listener_ != nullptr) evconnlistener_free(listener_);
}

void Listener::Disable() {
  retry_timer_->Cancel();
  evconnlistener_disable(listener_);
}

void Listener::OnAccept(evconnlistener*, int fd, struct sockaddr*, int,
                        void* arg) {
  static_cast<Listener*>(arg)->on_accept_(fd);
}

void Listener::OnError(evconnlistener* l, void* arg) {
  auto* self = static_cast<Listener*>(arg);
  int err = EVUTIL_SOCKET_ERROR();
  // EMFILE/ENFILE/ENOBUFS/ENOMEM: out of resources for now. Pause accepting
  // briefly instead of spinning on a listen socket that stays readable.
  std::fprintf(stderr, "bevrpc: accept failed: %s; pausing accepts for 100 ms\n",
               evutil_socket_error_to_string(err));
  evconnlistener_disable(l);
  self->retry_timer_->Start(absl::Milliseconds(100),
                            [self] { evconnlistener_enable(self->listener_); });
}

}  // namespace bevrpc::transport
