// Buffer: a byte queue over a libevent evbuffer, so code above transport/ can
// read frames from a connection's input and write frames to its output
// without knowing libevent.
//
//   transport::Buffer b;            // owns a new evbuffer
//   b.Append("BEVR");
//   char* p = b.Reserve(8);         // contiguous space at the end
//   ...fill p...; b.Commit(8);
//   b.Drain(4);
//
// A Buffer is not thread-safe; a connection's buffers belong to its loop
// thread.
#ifndef BEVRPC_TRANSPORT_BUFFER_H_
#define BEVRPC_TRANSPORT_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/zero_copy_stream.h"

struct evbuffer;

namespace bevrpc::transport {

class Buffer {
 public:
  // Owns a new, empty evbuffer.
  Buffer();
  // Borrows `buf`, which must outlive this object (a bufferevent's input or
  // output).
  explicit Buffer(evbuffer* buf);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  size_t size() const;
  bool empty() const { return size() == 0; }

  // Copies up to n bytes from the front into dst without removing them;
  // returns the number copied.
  size_t Peek(void* dst, size_t n) const;
  // The first n bytes (n <= size()) as one contiguous block, copying only
  // if they span chunks. Valid until the buffer changes.
  const char* Contiguous(size_t n);
  // Removes up to n bytes from the front.
  void Drain(size_t n);
  // Removes n bytes from the front and appends them to dst (moving whole
  // chains where it can, copying at most the partial ones).
  void MoveTo(Buffer* dst, size_t n);
  // Removes n bytes from the front into a string.
  std::string TakeString(size_t n);

  void Append(const void* data, size_t n);
  void Append(absl::string_view s) { Append(s.data(), s.size()); }

  // Returns n contiguous writable bytes at the end; they become part of the
  // buffer at Commit(used), used <= n. One Reserve at a time.
  char* Reserve(size_t n);
  void Commit(size_t used);

  evbuffer* raw() const { return buf_; }

 private:
  evbuffer* buf_;
  bool owned_;
  void* reserved_base_ = nullptr;
  size_t reserved_len_ = 0;
};

// Reads the first `limit` bytes of a Buffer in place (no copy), for parsing a
// protobuf message straight from a connection's input. The Buffer must not
// change while the stream is alive; drain the bytes afterwards.
class BufferInputStream : public google::protobuf::io::ZeroCopyInputStream {
 public:
  BufferInputStream(const Buffer& buffer, size_t limit);

  bool Next(const void** data, int* size) override;
  void BackUp(int count) override;
  bool Skip(int count) override;
  int64_t ByteCount() const override { return position_; }

 private:
  struct Span {
    const char* data;
    size_t size;
  };
  absl::InlinedVector<Span, 4> spans_;
  size_t span_index_ = 0;   // next span to hand out
  size_t span_offset_ = 0;  // bytes of spans_[span_index_] already handed out
  int64_t position_ = 0;
};

}  // namespace bevrpc::transport

#endif  // BEVRPC_TRANSPORT_BUFFER_H_
