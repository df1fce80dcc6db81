// interop_test_server: gRPC's interop grpc.testing.TestService
// (/usr/share/grpc-proto/grpc/testing/test.proto, a file with only
// services), tiny, plus reflection, for the CLI's end-to-end tests. A static
// binary: it finds TestService through reflection only because generated
// code links the file's descriptor (tools/protoc-gen-bevrpc).
//
//   interop_test_server --port=0
//
// The shared server main (services/builtin/server_main.h): reflection and
// health, "listening on 127.0.0.1:PORT" once ready, a drain on SIGTERM.
//
// EmptyCall answers Empty. UnaryCall answers the request's payload and, as
// gRPC's interop server does, fails with `response_status` when it is set
// and echoes the request header x-grpc-test-echo-trailing-bin as a trailer;
// for tests of metadata that is not UTF-8 it also:
//   - fails with UNKNOWN and the bytes of the request header
//     x-test-status-message-bin as the message, when that header is sent;
//   - adds a trailer with the invalid key "Bad Key" when the request header
//     x-test-bad-trailer is sent (the call then fails with INTERNAL).
// The other methods are UNIMPLEMENTED.
#include <string>

#include "grpc/testing/test.bevrpc.h"
#include "rpc/server.h"
#include "services/builtin/server_main.h"

namespace {

using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;

class TinyTestService : public grpc::testing::TestService::Service {
 public:
  absl::Status EmptyCall(bevrpc::ServerContext& ctx, const Empty& request,
                         Empty* response) override {
    return absl::OkStatus();
  }

  absl::Status UnaryCall(bevrpc::ServerContext& ctx,
                         const SimpleRequest& request,
                         SimpleResponse* response) override {
    const bevrpc::Metadata& headers = ctx.metadata();
    // gRPC's custom_metadata case: the initial header comes back as a
    // response header, the trailing one as a trailer.
    if (auto it = headers.find("x-grpc-test-echo-initial");
        it != headers.end()) {
      ctx.AddHeader(it->first, it->second);
    }
    if (auto it = headers.find("x-grpc-test-echo-trailing-bin");
        it != headers.end()) {
      ctx.AddTrailer(it->first, it->second);
    }
    if (headers.count("x-test-bad-trailer") != 0) ctx.AddTrailer("Bad Key", "v");
    if (auto it = headers.find("x-test-status-message-bin");
        it != headers.end()) {
      return absl::UnknownError(it->second);
    }
    if (request.has_response_status() && request.response_status().code() != 0) {
      return absl::Status(
          static_cast<absl::StatusCode>(request.response_status().code()),
          request.response_status().message());
    }
    *response->mutable_payload() = request.payload();
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  TinyTestService service;
  return bevrpc::builtin::ServerMain(
      argc, argv, "interop_test_server",
      [&](bevrpc::Server& server, bevrpc::builtin::HealthService&) {
        return server.RegisterService(&service);
      });
}
