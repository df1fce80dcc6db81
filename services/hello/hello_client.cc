#include <iostream>

#include "services/hello/hello.bevrpc.h"

using tutorial::hello::Greeter;
using tutorial::hello::HelloReply;
using tutorial::hello::HelloRequest;

int main(int argc, char** argv) {
  const char* address = argc > 1 ? argv[1] : "127.0.0.1:8080";
  absl::StatusOr<std::unique_ptr<bevrpc::Channel>> channel =
      bevrpc::Channel::Create(address);
  if (!channel.ok()) {
    std::cerr << channel.status() << "\n";
    return 1;
  }
  Greeter::Stub stub(channel->get());

  HelloRequest request;
  request.set_name("Ada");
  absl::StatusOr<HelloReply> reply = stub.SayHello(request);
  if (!reply.ok()) {
    std::cerr << reply.status() << "\n";
    return 1;
  }
  std::cout << reply->greeting() << "\n";
  return 0;
}
