#include "services/echo/echo_service.h"

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

}  // namespace

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
