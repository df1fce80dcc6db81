#include "transport/libevent_init.h"

#include <event2/thread.h>

#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include <mutex>

namespace bevrpc::transport {

void InitLibevent() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (evthread_use_pthreads() != 0) {
      // Without locking, every BEV_OPT_THREADSAFE bufferevent would race; no
      // caller can recover from this.
      std::fprintf(stderr, "bevrpc: evthread_use_pthreads() failed\n");
      std::abort();
    }
    // A write to a peer that has gone away must be an error (EPIPE) that
    // closes the connection, not a SIGPIPE that kills the process. Keep an
    // application's own handler if it installed one.
    struct sigaction old_action;
    if (sigaction(SIGPIPE, nullptr, &old_action) == 0 &&
        old_action.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
}

}  // namespace bevrpc::transport
