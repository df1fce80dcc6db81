#include "services/echo/echo_service.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bevrpc::echo {
namespace {

absl::Status ResultFor(const EchoRequest& req, EchoResponse* resp) {
  if (req.fail_code() == 0) {
    resp->set_message(req.message());
    return absl::OkStatus();
  }
  if (req.fail_code() < 0 || req.fail_code() > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("fail_code ", req.fail_code(),
                     " is not a canonical status code (1..16)"));
  }
  return absl::Status(static_cast<absl::StatusCode>(req.fail_code()),
                      req.fail_message());
}

constexpr uint32_t kMaxStreamMessageBytes = 4 << 20;

// Expand: writes while the stream accepts, then waits for OnWritable (or
// the interval's timer).
class Expander : public std::enable_shared_from_this<Expander> {
 public:
  Expander(ServerContext& ctx, const ExpandRequest& request,
           ServerWriter<EchoResponse> writer, Completion done)
      : ctx_(ctx),
        left_(request.count()),
        interval_(absl::Milliseconds(request.interval_ms())),
        writer_(std::move(writer)),
        done_(std::move(done)) {
    message_.set_message(std::string(request.size(), 'x'));
  }

  void Run() {
    while (left_ > 0) {
      if (ctx_.IsCancelled()) return;  // The call is over; drop `done_`.
      if (!writer_.Write(message_)) {
        writer_.OnWritable([self = shared_from_this()] { self->Run(); });
        return;
      }
      --left_;
      if (left_ > 0 && interval_ > absl::ZeroDuration()) {
        ctx_.RunAfter(interval_, [self = shared_from_this()] { self->Run(); });
        return;
      }
    }
    std::move(done_).Finish(absl::OkStatus());
  }

 private:
  ServerContext& ctx_;  // Valid while the call is: writer_ holds it.
  uint64_t left_;
  const absl::Duration interval_;
  ServerWriter<EchoResponse> writer_;
  Completion done_;
  EchoResponse message_;
};

// Collect: appends every message until the client half-closes.
class Collector : public std::enable_shared_from_this<Collector> {
 public:
  Collector(ServerReader<EchoRequest> reader, EchoResponse* response,
            Completion done)
      : reader_(std::move(reader)), response_(response), done_(std::move(done)) {}

  void Run() {
    EchoRequest request;
    while (reader_.TryRead(&request)) {
      if (response_->message().size() + request.message().size() >
          kMaxStreamMessageBytes) {
        std::move(done_).Finish(absl::ResourceExhaustedError(absl::StrCat(
            "Collect answers at most ", kMaxStreamMessageBytes, " bytes")));
        return;
      }
      response_->mutable_message()->append(request.message());
    }
    if (reader_.AtEnd()) {
      std::move(done_).Finish(absl::OkStatus());
      return;
    }
    reader_.OnReadable([self = shared_from_this()] { self->Run(); });
  }

 private:
  ServerReader<EchoRequest> reader_;
  EchoResponse* response_;
  Completion done_;
};

// Chat: one answer per message; reads the next only once the previous
// answer was accepted, so a client that does not read stops being read.
class Chatter : public std::enable_shared_from_this<Chatter> {
 public:
  Chatter(ServerContext& ctx,
          ServerReaderWriter<EchoRequest, EchoResponse> stream,
          Completion done)
      : ctx_(ctx), stream_(std::move(stream)), done_(std::move(done)) {}

  void Run() {
    while (true) {
      if (ctx_.IsCancelled()) return;
      if (pending_) {
        if (!stream_.Write(answer_)) {
          stream_.OnWritable([self = shared_from_this()] { self->Run(); });
          return;
        }
        pending_ = false;
      }
      if (!stream_.TryRead(&request_)) break;
      answer_.set_message(request_.message());
      pending_ = true;
    }
    if (stream_.AtEnd()) {
      std::move(done_).Finish(absl::OkStatus());
      return;
    }
    stream_.OnReadable([self = shared_from_this()] { self->Run(); });
  }

 private:
  ServerContext& ctx_;
  ServerReaderWriter<EchoRequest, EchoResponse> stream_;
  Completion done_;
  EchoRequest request_;
  EchoResponse answer_;
  bool pending_ = false;  // answer_ is still to be written.
};

}  // namespace

void EchoService::ExpandAsync(ServerContext& ctx, const ExpandRequest& request,
                              ServerWriter<EchoResponse> writer,
                              Completion done) {
  if (request.size() > kMaxStreamMessageBytes) {
    std::move(done).Finish(absl::InvalidArgumentError(absl::StrCat(
        "size ", request.size(), " is over the limit of ",
        kMaxStreamMessageBytes, " bytes per message")));
    return;
  }
  std::make_shared<Expander>(ctx, request, std::move(writer), std::move(done))
      ->Run();
}

void EchoService::CollectAsync(ServerContext& ctx,
                               ServerReader<EchoRequest> reader,
                               EchoResponse* response, Completion done) {
  std::make_shared<Collector>(std::move(reader), response, std::move(done))
      ->Run();
}

void EchoService::ChatAsync(
    ServerContext& ctx, ServerReaderWriter<EchoRequest, EchoResponse> stream,
    Completion done) {
  std::make_shared<Chatter>(ctx, std::move(stream), std::move(done))->Run();
}

void EchoService::EchoAsync(ServerContext& ctx, const EchoRequest& request,
                            EchoResponse* response, Completion done) {
  if (request.delay_ms() == 0) {
    std::move(done).Finish(ResultFor(request, response));
    return;
  }
  // Wait on the loop's timer; if the call ends first (deadline, cancel) the
  // closure is dropped and `done` with it.
  ctx.RunAfter(absl::Milliseconds(request.delay_ms()),
               [&request, response, done = std::move(done)]() mutable {
                 std::move(done).Finish(ResultFor(request, response));
               });
}

absl::Status RegisterEchoService(Server& server) {
  static EchoService* const service = new EchoService();
  return server.RegisterService(service);
}

}  // namespace bevrpc::echo
