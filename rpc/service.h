// Service: a set of methods registered together. Generated server bases
// (tools/protoc-gen-bevrpc) implement it; users subclass those and override
// the methods they serve.
//
//   class MyEcho : public bevrpc::echo::Echo::Service {
//     absl::Status Echo(bevrpc::ServerContext& ctx, const EchoRequest& req,
//                       EchoResponse* resp) override { ... }
//   };
//   MyEcho impl;
//   server.RegisterService(&impl);   // impl must outlive the server
//
// Threading: a service's handlers run concurrently on I/O and worker
// threads; implementations must be thread-safe.
#ifndef BEVRPC_RPC_SERVICE_H_
#define BEVRPC_RPC_SERVICE_H_

#include <vector>

#include "google/protobuf/descriptor.h"
#include "rpc/method.h"

namespace bevrpc {

class Service {
 public:
  virtual ~Service() = default;

  // The protobuf descriptor of the service (for reflection).
  virtual const google::protobuf::ServiceDescriptor* descriptor() const = 0;

  // One MethodDesc per RPC. The handlers call into *this.
  virtual std::vector<MethodDesc> Methods() = 0;
};

}  // namespace bevrpc

#endif  // BEVRPC_RPC_SERVICE_H_
