#include "transport/libevent_init.h"

#include <event2/thread.h>

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
  });
}

}  // namespace bevrpc::transport
