#include "services/builtin/health_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/method.h"

namespace bevrpc::builtin {

using health::v1::HealthCheckRequest;
using health::v1::HealthCheckResponse;

absl::Status HealthService::Register() {
  return server_->RegisterMethod(
      CallbackMethod<HealthCheckRequest, HealthCheckResponse>(
          absl::StrCat(kHealthService, "/Check"),
          [this](ServerContext&, const HealthCheckRequest& req,
                 HealthCheckResponse* resp, Completion done) {
            absl::StatusOr<ServingStatus> status = Check(req.service());
            if (status.ok()) resp->set_status(*status);
            std::move(done).Finish(status.status());
          }));
}

void HealthService::SetStatus(const std::string& service,
                              ServingStatus status) {
  MutexLock lock(&mu_);
  overrides_[service] = status;
}

absl::StatusOr<ServingStatus> HealthService::Check(
    const std::string& service) const {
  bool known = service.empty();
  if (!known) {
    std::vector<std::string> names = server_->ServiceNames();
    known = std::binary_search(names.begin(), names.end(), service);
  }
  ServingStatus status = HealthCheckResponse::SERVING;
  {
    MutexLock lock(&mu_);
    auto it = overrides_.find(service);
    if (it != overrides_.end()) {
      known = true;
      status = it->second;
    }
  }
  if (!known) {
    return absl::NotFoundError(
        absl::StrCat("service \"", service, "\" is not known to this server"));
  }
  if (server_->draining()) return HealthCheckResponse::NOT_SERVING;
  return status;
}

}  // namespace bevrpc::builtin
