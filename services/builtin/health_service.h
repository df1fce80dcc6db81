// The health service (bevrpc.health.v1.Health).
//
//   bevrpc::builtin::HealthService health(&server);
//   health.Register();                                   // before Start()
//   health.SetStatus("bevrpc.kv.KeyValue", ServingStatus::NOT_SERVING);
//
// Check(service) answers SERVING for services the server serves unless told
// otherwise, NOT_FOUND for services it does not know, and NOT_SERVING for
// everything once the server starts draining. "" is the server as a whole.
// Thread-safe; must outlive the server's use of it.
#ifndef BEVRPC_SERVICES_BUILTIN_HEALTH_SERVICE_H_
#define BEVRPC_SERVICES_BUILTIN_HEALTH_SERVICE_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "rpc/server.h"
#include "services/builtin/health.pb.h"
#include "transport/sync.h"

namespace bevrpc::builtin {

inline constexpr char kHealthService[] = "bevrpc.health.v1.Health";

using ServingStatus = health::v1::HealthCheckResponse::ServingStatus;

class HealthService {
 public:
  explicit HealthService(Server* server) : server_(server) {}

  // Adds bevrpc.health.v1.Health/Check to the server.
  absl::Status Register();

  // Overrides the status of `service` ("" = the whole server).
  void SetStatus(const std::string& service, ServingStatus status);

  // What Check() answers.
  absl::StatusOr<ServingStatus> Check(const std::string& service) const;

 private:
  Server* server_;
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, ServingStatus> overrides_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::builtin

#endif  // BEVRPC_SERVICES_BUILTIN_HEALTH_SERVICE_H_
