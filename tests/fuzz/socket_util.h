// Plain POSIX loopback sockets for the network fuzz targets: a listener, a
// client connect, and a bounded exchange that writes bytes while reading
// whatever the peer sends, half-closes, and reads until the peer closes.
// Independent of transport/ (the code under test).
//
//   int port;
//   int listener = ListenLoopback(&port);
//   int fd = ConnectLoopback(port);
//   std::string in;
//   absl::Status s = Exchange(fd, input, absl::Now() + absl::Seconds(10), &in);
//   ResetAndClose(fd);
//
// Every wait is bounded by the deadline given. Thread-compatible: one
// thread per socket.
#ifndef BEVRPC_TESTS_FUZZ_SOCKET_UTIL_H_
#define BEVRPC_TESTS_FUZZ_SOCKET_UTIL_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace bevrpc::fuzz {

// A non-blocking listening socket on 127.0.0.1 with a free port; -1 (and a
// message on stderr) on failure.
int ListenLoopback(int* port);

// A connected, non-blocking socket to 127.0.0.1:`port`; -1 on failure.
int ConnectLoopback(int port, absl::Time deadline);

// Accepts one connection (non-blocking); -1 if none is waiting.
int AcceptNonBlocking(int listener);

// Reads into `*in` until it holds `count` whole wire-v1 frames (by their
// headers), the peer closes, or `deadline`. OK once the frames are there;
// UNAVAILABLE if the peer closed first; DEADLINE_EXCEEDED on timeout.
// Connections waiting on `reject_listener` (if >= 0) are accepted and
// reset meanwhile.
absl::Status ReadFrames(int fd, int count, absl::Time deadline,
                        std::string* in, int reject_listener = -1);

// Writes all of `out` while reading what arrives into `*in`, then
// half-closes (SHUT_WR) and reads until the peer closes or resets. OK once
// the peer has closed; DEADLINE_EXCEEDED if it has not by `deadline`. A
// peer that stops reading before taking all of `out` is fine as long as
// it closes. Connections waiting on `reject_listener` are reset meanwhile.
absl::Status Exchange(int fd, absl::string_view out, absl::Time deadline,
                      std::string* in, int reject_listener = -1);

// Writes all of `out` while reading what arrives into `*in`, without
// half-closing, until `done(*in)` holds once everything is written (it is
// asked after each read, and once when the writing ends), or the peer
// closes. OK then; DEADLINE_EXCEEDED if neither happened by `deadline`.
absl::Status ExchangeUntil(int fd, absl::string_view out, absl::Time deadline,
                           std::string* in,
                           absl::FunctionRef<bool(const std::string&)> done);

// Closes with SO_LINGER 0: a RST, and no TIME_WAIT left behind (the targets
// open thousands of connections a second).
void ResetAndClose(int fd);

}  // namespace bevrpc::fuzz

#endif  // BEVRPC_TESTS_FUZZ_SOCKET_UTIL_H_
