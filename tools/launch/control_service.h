// ControlService: bevrpc.launch.Launcher (tools/launch/launcher.proto), the
// launcher's control surface, over a Supervisor.
//
//   ControlService control(supervisor.get());   // must outlive the server
//   server.RegisterService(&control);
//   // bevrpc call HOST:PORT bevrpc.launch.Launcher/Status '{}'
//
// Status, Restart, Stop and Start map to the Supervisor's methods; an
// unknown service or replica is NOT_FOUND. Restart, Stop and Start return
// once the supervisor has recorded the request (watch Status for the
// outcome). Thread-safe (the Supervisor is).
#ifndef BEVRPC_TOOLS_LAUNCH_CONTROL_SERVICE_H_
#define BEVRPC_TOOLS_LAUNCH_CONTROL_SERVICE_H_

#include "tools/launch/launcher.bevrpc.h"
#include "tools/launch/supervisor.h"

namespace bevrpc::launch {

class ControlService : public Launcher::Service {
 public:
  // `supervisor` is borrowed and must outlive the service.
  explicit ControlService(Supervisor* supervisor) : supervisor_(supervisor) {}

  absl::Status Status(ServerContext& ctx, const StatusRequest& request,
                      StatusResponse* response) override;
  absl::Status Restart(ServerContext& ctx, const ProcessRequest& request,
                       ProcessResponse* response) override;
  absl::Status Stop(ServerContext& ctx, const ProcessRequest& request,
                    ProcessResponse* response) override;
  absl::Status Start(ServerContext& ctx, const ProcessRequest& request,
                     ProcessResponse* response) override;

 private:
  Supervisor* supervisor_;
};

}  // namespace bevrpc::launch

#endif  // BEVRPC_TOOLS_LAUNCH_CONTROL_SERVICE_H_
