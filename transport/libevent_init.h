// One-time libevent setup shared by everything in transport/.
//
//   transport::InitLibevent();  // before the first event_base is created
//
// Thread-safe; every EventLoop constructor calls it, so users rarely need to.
#ifndef BEVRPC_TRANSPORT_LIBEVENT_INIT_H_
#define BEVRPC_TRANSPORT_LIBEVENT_INIT_H_

namespace bevrpc::transport {

// Calls evthread_use_pthreads() exactly once per process, so that bufferevents
// created with BEV_OPT_THREADSAFE get real locks and event_bases can be woken
// from other threads. Also ignores SIGPIPE unless the application installed
// its own handler, so writing to a vanished peer closes that connection
// instead of killing the process. Idempotent and thread-safe.
void InitLibevent();

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_LIBEVENT_INIT_H_
