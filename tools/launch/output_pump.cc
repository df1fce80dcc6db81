#include "tools/launch/output_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace bevrpc::launch {

OutputPump::OutputPump(OutputPumpOptions options, LineFn on_line)
    : options_(options), on_line_(std::move(on_line)) {
  if (pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake_fds_[0] = wake_fds_[1] = -1;
  }
  thread_ = std::thread([this] { Run(); });
}

OutputPump::~OutputPump() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  Wake();
  thread_.join();
  for (Stream& s : streams_) close(s.fd);
  for (Stream& s : added_) close(s.fd);
  close(wake_fds_[0]);
  close(wake_fds_[1]);
}

void OutputPump::Add(int fd, uint64_t key) {
  {
    MutexLock lock(&mu_);
    added_.push_back(Stream{fd, key, {}, false});
  }
  Wake();
}

void OutputPump::Wake() {
  char c = 0;
  (void)!write(wake_fds_[1], &c, 1);
}

void OutputPump::TakeNewStreams() {
  char drain[64];
  while (read(wake_fds_[0], drain, sizeof(drain)) > 0) {
  }
  MutexLock lock(&mu_);
  for (Stream& s : added_) streams_.push_back(std::move(s));
  added_.clear();
}

void OutputPump::SplitLines(Stream& s, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (data[i] == '\n') {
      if (!s.discarding) on_line_(s.key, s.partial);
      s.partial.clear();
      s.discarding = false;
    } else if (!s.discarding) {
      s.partial.push_back(data[i]);
      if (s.partial.size() >= options_.max_line_bytes) {
        on_line_(s.key, s.partial + " [line truncated]");
        s.partial.clear();
        s.discarding = true;
      }
    }
  }
}

bool OutputPump::ReadStream(Stream& s) {
  char buf[4096];
  ssize_t n = read(s.fd, buf, sizeof(buf));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    if (!s.partial.empty() && !s.discarding) on_line_(s.key, s.partial);
    return false;
  }
  SplitLines(s, buf, static_cast<size_t>(n));
  return true;
}

void OutputPump::Run() {
  std::vector<pollfd> fds;
  while (true) {
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
    }
    fds.assign(1, pollfd{wake_fds_[0], POLLIN, 0});
    for (const Stream& s : streams_) fds.push_back(pollfd{s.fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
    // Streams first: their indices match fds[1..] until new ones are taken.
    for (size_t i = streams_.size(); i-- > 0;) {
      if (fds[i + 1].revents == 0) continue;
      if (!ReadStream(streams_[i])) {
        close(streams_[i].fd);
        streams_.erase(streams_.begin() + i);
      }
    }
    if (fds[0].revents != 0) TakeNewStreams();
  }
}

}  // namespace bevrpc::launch
