#include "services/builtin/server_main.h"
#include "services/hello/hello.bevrpc.h"

using tutorial::hello::Greeter;
using tutorial::hello::HelloReply;
using tutorial::hello::HelloRequest;

class GreeterImpl : public Greeter::Service {
 public:
  absl::Status SayHello(bevrpc::ServerContext& ctx, const HelloRequest& request,
                        HelloReply* response) override {
    if (request.name().empty()) {
      return absl::InvalidArgumentError("name is empty");
    }
    response->set_greeting("Hello, " + request.name() + "!");
    return absl::OkStatus();
  }
};

int main(int argc, char** argv) {
  GreeterImpl greeter;
  return bevrpc::builtin::ServerMain(
      argc, argv, "hello_server",
      [&](bevrpc::Server& server, bevrpc::builtin::HealthService&) {
        return server.RegisterService(&greeter);
      });
}
