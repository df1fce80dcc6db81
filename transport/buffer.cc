#include "transport/buffer.h"

#include <event2/buffer.h>

#include <algorithm>
#include <cstdlib>

namespace bevrpc::transport {

Buffer::Buffer() : buf_(evbuffer_new()), owned_(true) {
  if (buf_ == nullptr) std::abort();  // Out of memory.
}

Buffer::Buffer(evbuffer* buf) : buf_(buf), owned_(false) {}

Buffer::~Buffer() {
  if (owned_) evbuffer_free(buf_);
}

size_t Buffer::size() const { return evbuffer_get_length(buf_); }

size_t Buffer::Peek(void* dst, size_t n) const {
  ev_ssize_t got = evbuffer_copyout(buf_, dst, n);
  return got < 0 ? 0 : static_cast<size_t>(got);
}

const char* Buffer::Contiguous(size_t n) {
  return reinterpret_cast<const char*>(
      evbuffer_pullup(buf_, static_cast<ev_ssize_t>(n)));
}

void Buffer::Drain(size_t n) { evbuffer_drain(buf_, n); }

void Buffer::MoveTo(Buffer* dst, size_t n) {
  evbuffer_remove_buffer(buf_, dst->buf_, n);
}

std::string Buffer::TakeString(size_t n) {
  n = std::min(n, size());
  std::string out(n, '\0');
  evbuffer_remove(buf_, out.data(), n);
  return out;
}

void Buffer::Append(const void* data, size_t n) { evbuffer_add(buf_, data, n); }

char* Buffer::Reserve(size_t n) {
  evbuffer_iovec vec;
  if (evbuffer_reserve_space(buf_, static_cast<ev_ssize_t>(n), &vec, 1) != 1) {
    std::abort();  // Out of memory.
  }
  reserved_base_ = vec.iov_base;
  reserved_len_ = vec.iov_len;
  return static_cast<char*>(vec.iov_base);
}

void Buffer::Commit(size_t used) {
  evbuffer_iovec vec;
  vec.iov_base = reserved_base_;
  vec.iov_len = std::min(used, reserved_len_);
  evbuffer_commit_space(buf_, &vec, 1);
  reserved_base_ = nullptr;
  reserved_len_ = 0;
}

BufferInputStream::BufferInputStream(const Buffer& buffer, size_t limit) {
  evbuffer* buf = buffer.raw();
  limit = std::min(limit, evbuffer_get_length(buf));
  if (limit == 0) return;
  int n = evbuffer_peek(buf, static_cast<ev_ssize_t>(limit), nullptr, nullptr, 0);
  absl::InlinedVector<evbuffer_iovec, 4> vecs(n);
  n = evbuffer_peek(buf, static_cast<ev_ssize_t>(limit), nullptr, vecs.data(), n);
  size_t left = limit;
  for (int i = 0; i < n && left > 0; ++i) {
    size_t take = std::min(left, vecs[i].iov_len);
    if (take == 0) continue;
    spans_.push_back(Span{static_cast<const char*>(vecs[i].iov_base), take});
    left -= take;
  }
}

bool BufferInputStream::Next(const void** data, int* size) {
  while (span_index_ < spans_.size() &&
         span_offset_ == spans_[span_index_].size) {
    ++span_index_;
    span_offset_ = 0;
  }
  if (span_index_ == spans_.size()) return false;
  const Span& s = spans_[span_index_];
  size_t n = std::min<size_t>(s.size - span_offset_, 1 << 30);
  *data = s.data + span_offset_;
  *size = static_cast<int>(n);
  span_offset_ += n;
  position_ += n;
  return true;
}

void BufferInputStream::BackUp(int count) {
  // Only the tail of the last Next() may be backed up (the protobuf contract).
  span_offset_ -= count;
  position_ -= count;
}

bool BufferInputStream::Skip(int count) {
  while (count > 0) {
    const void* data;
    int size;
    if (!Next(&data, &size)) return false;
    if (size > count) {
      BackUp(size - count);
      return true;
    }
    count -= size;
  }
  return true;
}

}  // namespace bevrpc::transport
