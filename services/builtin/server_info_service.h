// The server-info service (bevrpc.server.v1.ServerInfo): which process
// answered a call, so a client can tell apart the prefork workers behind one
// port, or the replicas behind one target.
//
//   bevrpc::builtin::ServerInfoFacts facts;
//   facts.name = "echo_server";
//   facts.id = "echo/0";
//   bevrpc::builtin::ServerInfoService info(std::move(facts));
//   server.RegisterService(&info);                // before Start()
//   server.Start();
//   info.SetListenAddress("127.0.0.1:8080");      // once the port is known
//
// Get() answers with the facts given, the process's pid (read at each call,
// so a forked child answers with its own) and the listening address.
// Thread-safe; must outlive the server's use of it.
#ifndef BEVRPC_SERVICES_BUILTIN_SERVER_INFO_SERVICE_H_
#define BEVRPC_SERVICES_BUILTIN_SERVER_INFO_SERVICE_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rpc/server.h"
#include "services/builtin/server_info.bevrpc.h"
#include "transport/sync.h"

namespace bevrpc::builtin {

inline constexpr char kServerInfoService[] = "bevrpc.server.v1.ServerInfo";

// What ServerInfo/Get reports besides the pid.
struct ServerInfoFacts {
  // The binary's name. Default: "".
  std::string name;
  // The stable replica identity (--id). Default: "".
  std::string id;
  // The prefork worker index; -1 without prefork. Default: -1.
  int worker = -1;
  // The prefork master's pid; 0 without prefork. Default: 0.
  int64_t master_pid = 0;
  // When the process started serving. Default: when the facts were made.
  absl::Time started = absl::Now();
};

class ServerInfoService : public server::v1::ServerInfo::Service {
 public:
  explicit ServerInfoService(ServerInfoFacts facts) : facts_(std::move(facts)) {}

  // HOST:PORT, reported from now on (the port is known after Start()).
  void SetListenAddress(std::string address);

  // What Get() answers.
  server::v1::ServerInfoResponse Info() const;

  void GetAsync(ServerContext& ctx,
                const server::v1::GetServerInfoRequest& request,
                server::v1::ServerInfoResponse* response,
                Completion done) override;

 private:
  const ServerInfoFacts facts_;
  mutable Mutex mu_;
  std::string listen_address_ ABSL_GUARDED_BY(mu_);
};

}  // namespace bevrpc::builtin

#endif  // BEVRPC_SERVICES_BUILTIN_SERVER_INFO_SERVICE_H_
