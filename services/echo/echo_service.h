// The echo service's implementation, on the generated Echo::Service base.
//
//   bevrpc::echo::EchoService echo;        // must outlive the server
//   server.RegisterService(&echo);
//   // or: bevrpc::echo::RegisterEchoService(server);
//
// Echo answers with the request's message after `delay_ms` (waiting on a
// loop timer, never blocking the I/O thread), or fails with `fail_code` /
// `fail_message` when `fail_code` is non-zero. The streaming methods
// (Expand, Collect, Chat) run on the I/O loop too and follow the streams'
// flow control: they write only while the stream accepts and read only as
// fast as they can answer. Stateless and thread-safe.
#ifndef BEVRPC_SERVICES_ECHO_ECHO_SERVICE_H_
#define BEVRPC_SERVICES_ECHO_ECHO_SERVICE_H_

#include "absl/status/status.h"
#include "rpc/server.h"
#include "services/echo/echo.bevrpc.h"

namespace bevrpc::echo {

inline constexpr const char* kEchoMethod = Echo::kEchoMethod;

class EchoService : public Echo::Service {
 public:
  // Callback flavour: runs on the I/O loop and never blocks it.
  void EchoAsync(ServerContext& ctx, const EchoRequest& request,
                 EchoResponse* response, Completion done) override;
  void ExpandAsync(ServerContext& ctx, const ExpandRequest& request,
                   ServerWriter<EchoResponse> writer,
                   Completion done) override;
  void CollectAsync(ServerContext& ctx, ServerReader<EchoRequest> reader,
                    EchoResponse* response, Completion done) override;
  void ChatAsync(ServerContext& ctx,
                 ServerReaderWriter<EchoRequest, EchoResponse> stream,
                 Completion done) override;
};

// Registers a process-wide EchoService on `server`.
absl::Status RegisterEchoService(Server& server);

}  // namespace bevrpc::echo

#endif  // BEVRPC_SERVICES_ECHO_ECHO_SERVICE_H_
