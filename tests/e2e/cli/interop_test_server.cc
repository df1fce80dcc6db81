// interop_test_server: gRPC's interop grpc.testing.TestService
// (/usr/share/grpc-proto/grpc/testing/test.proto, a file with only
// services), tiny, plus reflection, for the CLI's end-to-end tests. A static
// binary: it finds TestService through reflection only because generated
// code links the file's descriptor (tools/protoc-gen-bevrpc).
//
//   interop_test_server --port=0
//
// Prints "listening on 127.0.0.1:PORT" once ready (flushed), serves in the
// foreground, and on SIGTERM or SIGINT shuts down and exits 0.
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
#include <signal.h>

#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "grpc/testing/test.bevrpc.h"
#include "rpc/server.h"
#include "services/builtin/reflection_service.h"

ABSL_FLAG(int, port, 0, "TCP port on 127.0.0.1; 0 picks a free port");

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
  absl::ParseCommandLine(argc, argv);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bevrpc::ServerOptions options;
  options.listen_address =
      absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port));
  bevrpc::Server server(options);
  TinyTestService service;
  absl::Status s = server.RegisterService(&service);
  if (s.ok()) s = bevrpc::builtin::AddReflection(server);
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    std::cerr << "interop_test_server: " << s << "\n";
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << server.port() << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  server.Shutdown(absl::Seconds(2));
  return 0;
}
