#include "tools/launch/control_service.h"

namespace bevrpc::launch {
namespace {

std::optional<uint32_t> ReplicaOf(const ProcessRequest& request) {
  if (!request.has_replica()) return std::nullopt;
  return request.replica();
}

}  // namespace

absl::Status ControlService::Status(ServerContext&, const StatusRequest&,
                                    StatusResponse* response) {
  *response = supervisor_->Status();
  return absl::OkStatus();
}

absl::Status ControlService::Restart(ServerContext&,
                                     const ProcessRequest& request,
                                     ProcessResponse*) {
  return supervisor_->Restart(request.service(), ReplicaOf(request));
}

absl::Status ControlService::Stop(ServerContext&, const ProcessRequest& request,
                                  ProcessResponse*) {
  return supervisor_->Stop(request.service(), ReplicaOf(request));
}

absl::Status ControlService::Start(ServerContext&,
                                   const ProcessRequest& request,
                                   ProcessResponse*) {
  return supervisor_->StartReplicas(request.service(), ReplicaOf(request));
}

}  // namespace bevrpc::launch
