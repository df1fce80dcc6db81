#include "rpc/admin/http_connection.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "rpc/admin/http_response_writer.h"

namespace bevrpc::admin {

HttpConnection::HttpConnection(transport::Connection* conn,
                               const HttpLimits& limits,
                               const PageRegistry* pages)
    : conn_(conn),
      limits_(limits),
      pages_(pages),
      parser_(limits),
      request_timer_(conn->loop()),
      idle_timer_(conn->loop()) {}

void HttpConnection::Start() { ArmTimers(); }

size_t HttpConnection::OnReadable(transport::Buffer& input) {
  if (closing_) {
    input.Drain(input.size());
    return 1;
  }
  while (!input.empty() && !closing_ && !paused_for_output_) {
    const size_t size = input.size();
    const char* data = input.Contiguous(size);
    const size_t used = parser_.Consume(absl::string_view(data, size));
    input.Drain(used);
    if (parser_.state() == HttpRequestParser::State::kNeedMore) break;
    if (parser_.state() == HttpRequestParser::State::kError) {
      Write(TextResponse(parser_.error_status(), parser_.error_message()),
            /*head=*/false, /*close=*/true);
      Close();
      break;
    }
    Serve();
    if (closing_) break;
    parser_.Reset();
    if (!conn_->writable()) {
      // The client is not reading its answers: read no more requests
      // until it does (the output stays bounded by the write watermark).
      paused_for_output_ = true;
      conn_->PauseReading();
    }
  }
  ArmTimers();
  return 1;
}

void HttpConnection::Serve() {
  ++requests_;
  HttpRequest& request = parser_.request();
  request.peer = conn_->peer();
  HttpResponse response = pages_->Handle(request);
  const bool close = !parser_.keep_alive() || finishing_;
  Write(response, request.method == "HEAD", close);
  if (close) Close();
}

void HttpConnection::Write(const HttpResponse& response, bool head,
                           bool close) {
  std::string bytes = SerializeHttpResponse(response, head, close);
  conn_->Write([&](transport::Buffer& out) { out.Append(bytes); });
}

void HttpConnection::Close() {
  if (closing_) return;
  closing_ = true;
  request_timer_.Cancel();
  idle_timer_.Cancel();
  conn_->CloseAfterFlush();
}

void HttpConnection::ArmTimers() {
  if (closing_) return;
  if (paused_for_output_) {
    // Waiting for our own output to drain, not for the client.
    request_timer_.Cancel();
    idle_timer_.Cancel();
    return;
  }
  if (parser_.started()) {
    idle_timer_.Cancel();
    if (!request_timer_.pending()) {
      request_timer_.Start(limits_.request_timeout,
                           [this] { OnRequestTimeout(); });
    }
    return;
  }
  request_timer_.Cancel();
  // Restarted at every request: idle means since the last one.
  idle_timer_.Start(limits_.idle_timeout, [this] { Close(); });
}

void HttpConnection::OnRequestTimeout() {
  if (closing_) return;
  Write(TextResponse(408, absl::StrCat(
                              "request not received whole within "
                              "request_timeout ",
                              absl::FormatDuration(limits_.request_timeout))),
        /*head=*/false, /*close=*/true);
  Close();
}

void HttpConnection::OnWritabilityChanged(bool writable) {
  if (!writable || !paused_for_output_ || closing_) return;
  paused_for_output_ = false;
  conn_->ResumeReading();  // Delivers what is buffered, if anything.
  ArmTimers();
}

bool HttpConnection::OnReadClosed() {
  // The client sent all it will: answers already written still go out.
  Close();
  return true;
}

void HttpConnection::OnClosed() {
  closing_ = true;
  request_timer_.Cancel();
  idle_timer_.Cancel();
}

void HttpConnection::Refuse(absl::string_view why) {
  if (closing_) return;
  Write(TextResponse(503, why), /*head=*/false, /*close=*/true);
  Close();
}

void HttpConnection::Finish() {
  finishing_ = true;
  if (!parser_.started()) Close();
}

}  // namespace bevrpc::admin
