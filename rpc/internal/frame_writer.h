// FrameWriter: writes whole frames to one connection, building each one's
// FrameMeta in a single reused message (no allocation per frame once its
// strings have grown). Internal to rpc/; the server session and the
// client connection write every frame through one.
//
//   FrameWriter out(conn);
//   out.Begin(wire::CANCEL, call_id);
//   out.Send();
//
//   wire::FrameMeta& meta = out.Begin(wire::RESPONSE, call_id);
//   meta.set_status_code(0);
//   out.Send(&response);
//
// Threading: the connection's loop thread. The connection is borrowed.
#ifndef BEVRPC_RPC_INTERNAL_FRAME_WRITER_H_
#define BEVRPC_RPC_INTERNAL_FRAME_WRITER_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"
#include "rpc/frame_codec.h"
#include "rpc/wire.pb.h"
#include "transport/connection.h"

namespace bevrpc::internal {

class FrameWriter {
 public:
  explicit FrameWriter(transport::Connection* conn = nullptr) : conn_(conn) {}

  void set_connection(transport::Connection* conn) { conn_ = conn; }

  // Starts the next frame: a cleared meta of `kind` for `call_id` (0 for
  // connection-level frames), to fill in before Send().
  wire::FrameMeta& Begin(wire::FrameKind kind, uint64_t call_id = 0) {
    meta_.Clear();
    meta_.set_kind(kind);
    if (call_id != 0) meta_.set_call_id(call_id);
    return meta_;
  }
  wire::FrameMeta& meta() { return meta_; }

  // Appends the frame with `payload` serialized (null: none), or with a
  // payload that is already bytes.
  void Send(const google::protobuf::MessageLite* payload) {
    conn_->Write(
        [&](transport::Buffer& out) { AppendFrame(out, meta_, payload); });
  }
  void Send(absl::string_view payload = absl::string_view()) {
    conn_->Write(
        [&](transport::Buffer& out) { AppendFrame(out, meta_, payload); });
  }

 private:
  transport::Connection* conn_;
  wire::FrameMeta meta_;
};

}  // namespace bevrpc::internal

#endif  // BEVRPC_RPC_INTERNAL_FRAME_WRITER_H_
