#include "services/builtin/server_info_service.h"

#include <unistd.h>

#include <utility>

namespace bevrpc::builtin {

using server::v1::GetServerInfoRequest;
using server::v1::ServerInfoResponse;

void ServerInfoService::SetListenAddress(std::string address) {
  MutexLock lock(&mu_);
  listen_address_ = std::move(address);
}

ServerInfoResponse ServerInfoService::Info() const {
  ServerInfoResponse info;
  info.set_pid(getpid());
  info.set_worker(facts_.worker);
  info.set_id(facts_.id);
  info.set_name(facts_.name);
  info.set_started_unix_ms(absl::ToUnixMillis(facts_.started));
  info.set_master_pid(facts_.master_pid);
  MutexLock lock(&mu_);
  info.set_listen_address(listen_address_);
  return info;
}

void ServerInfoService::GetAsync(ServerContext&, const GetServerInfoRequest&,
                                 ServerInfoResponse* response,
                                 Completion done) {
  *response = Info();
  std::move(done).Finish(absl::OkStatus());
}

}  // namespace bevrpc::builtin
