#include "services/echo/echo_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/method.h"
#include "services/echo/echo.pb.h"

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

void Echo(ServerContext& ctx, const EchoRequest& req, EchoResponse* resp,
          Completion done) {
  if (req.delay_ms() == 0) {
    std::move(done).Finish(ResultFor(req, resp));
    return;
  }
  // Wait on the loop's timer; if the call ends first (deadline, cancel) the
  // closure is dropped and `done` with it.
  ctx.RunAfter(absl::Milliseconds(req.delay_ms()),
               [&req, resp, done = std::move(done)]() mutable {
                 std::move(done).Finish(ResultFor(req, resp));
               });
}

}  // namespace

absl::Status RegisterEchoService(Server& server) {
  return server.RegisterMethod(
      CallbackMethod<EchoRequest, EchoResponse>(kEchoMethod, &Echo));
}

}  // namespace bevrpc::echo
