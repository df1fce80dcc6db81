// bevrpc: the command-line client.
//
//   bevrpc call 127.0.0.1:8080 bevrpc.echo.Echo/Echo '{"message":"hi"}'
//   bevrpc call ADDR METHOD JSON --timeout=500ms --metadata=k=v -v
//
// Message types are looked up among the descriptors linked into this binary
// (today: the echo service). The response is printed as JSON on stdout.
// Exit status: 0 OK; 2 usage error; 3 bad input (JSON, unknown method);
// 64 + the canonical code when the call fails (e.g. 78 = 64 + UNAVAILABLE,
// 68 = 64 + DEADLINE_EXCEEDED). See docs/cli.md.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "rpc/channel.h"
#include "rpc/status.h"
#include "services/echo/echo.pb.h"

namespace bevrpc::cli {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitBadInput = 3;
constexpr int kExitRpcBase = 64;

constexpr char kUsage[] =
    "usage: bevrpc call ADDR package.Service/Method [JSON] [flags]\n"
    "\n"
    "Calls a method with a JSON request and prints the JSON response.\n"
    "ADDR is host:port or [v6]:port. JSON defaults to {}.\n"
    "\n"
    "flags:\n"
    "  --timeout=DURATION   deadline, e.g. 500ms, 2s (default: none)\n"
    "  --metadata=KEY=VALUE request header; repeatable\n"
    "  -v                   also print response trailers to stderr\n"
    "\n"
    "example:\n"
    "  bevrpc call 127.0.0.1:8080 bevrpc.echo.Echo/Echo '{\"message\":\"hi\"}'\n"
    "\n"
    "exit status: 0 OK, 2 usage, 3 bad input, 64+code when the call fails\n";

struct CallArgs {
  std::string address;
  std::string method;
  std::string json = "{}";
  CallOptions options;
  bool verbose = false;
};

int Usage(const std::string& error) {
  if (!error.empty()) std::cerr << "bevrpc: " << error << "\n\n";
  std::cerr << kUsage;
  return kExitUsage;
}

// Returns "" on success, else the error.
std::string ParseCallArgs(const std::vector<std::string>& args, CallArgs* out) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](absl::string_view flag) -> std::string {
      if (a.size() > flag.size() && a[flag.size()] == '=') {
        return a.substr(flag.size() + 1);
      }
      return i + 1 < args.size() ? args[++i] : "";
    };
    if (a == "-v" || a == "--verbose") {
      out->verbose = true;
    } else if (absl::StartsWith(a, "--timeout")) {
      std::string v = value("--timeout");
      if (!absl::ParseDuration(v, &out->options.timeout) ||
          out->options.timeout <= absl::ZeroDuration()) {
        return absl::StrCat("bad --timeout \"", v, "\" (try 500ms or 2s)");
      }
    } else if (absl::StartsWith(a, "--metadata")) {
      std::string v = value("--metadata");
      std::pair<std::string, std::string> kv =
          absl::StrSplit(v, absl::MaxSplits('=', 1));
      if (kv.first.empty() || !absl::StrContains(v, '=')) {
        return absl::StrCat("bad --metadata \"", v, "\" (want KEY=VALUE)");
      }
      out->options.metadata[kv.first] = kv.second;
    } else if (absl::StartsWith(a, "-") && a != "-") {
      return absl::StrCat("unknown flag ", a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() < 2 || positional.size() > 3) {
    return "call needs ADDR, METHOD and an optional JSON request";
  }
  out->address = positional[0];
  out->method = positional[1];
  if (positional.size() == 3) out->json = positional[2];
  return "";
}

const google::protobuf::MethodDescriptor* FindMethod(const std::string& name,
                                                     std::string* error) {
  size_t slash = name.find('/');
  if (slash == std::string::npos) {
    *error = absl::StrCat("method \"", name, "\" is not package.Service/Method");
    return nullptr;
  }
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* service = pool->FindServiceByName(name.substr(0, slash));
  if (service == nullptr) {
    *error = absl::StrCat("unknown service \"", name.substr(0, slash), "\"");
    return nullptr;
  }
  const auto* method = service->FindMethodByName(name.substr(slash + 1));
  if (method == nullptr) {
    std::string known;
    for (int i = 0; i < service->method_count(); ++i) {
      absl::StrAppend(&known, i ? ", " : "", service->method(i)->name());
    }
    *error = absl::StrCat("unknown method \"", name.substr(slash + 1),
                          "\" of service ", service->full_name(),
                          " (it has: ", known, ")");
  }
  return method;
}

int Call(const CallArgs& args) {
  std::string error;
  const google::protobuf::MethodDescriptor* method =
      FindMethod(args.method, &error);
  if (method == nullptr) {
    std::cerr << "bevrpc: " << error << "\n";
    return kExitBadInput;
  }
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<google::protobuf::Message> request(
      factory->GetPrototype(method->input_type())->New());
  std::unique_ptr<google::protobuf::Message> response(
      factory->GetPrototype(method->output_type())->New());
  auto parsed = google::protobuf::util::JsonStringToMessage(args.json,
                                                            request.get());
  if (!parsed.ok()) {
    std::cerr << "bevrpc: request is not a valid "
              << method->input_type()->full_name() << ": " << parsed.message()
              << "\n";
    return kExitBadInput;
  }
  absl::StatusOr<std::unique_ptr<Channel>> channel =
      Channel::Create(args.address);
  if (!channel.ok()) {
    std::cerr << "bevrpc: " << channel.status().message() << "\n";
    return kExitRpcBase + static_cast<int>(channel.status().code());
  }
  Metadata trailers;
  absl::Status s = (*channel)->Call(args.method, *request, response.get(),
                                    args.options, &trailers);
  if (args.verbose) {
    for (const auto& [k, v] : trailers) std::cerr << k << ": " << v << "\n";
  }
  if (!s.ok()) {
    std::cerr << StatusCodeName(s.code()) << ": " << s.message() << "\n";
    return kExitRpcBase + static_cast<int>(s.code());
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  auto printed =
      google::protobuf::util::MessageToJsonString(*response, &json, print);
  if (!printed.ok()) {
    std::cerr << "bevrpc: cannot print response: " << printed.message() << "\n";
    return kExitBadInput;
  }
  std::cout << json << std::endl;
  return 0;
}

}  // namespace
}  // namespace bevrpc::cli

int main(int argc, char** argv) {
  // Linked-in services whose descriptors the CLI can use (until reflection).
  if (bevrpc::echo::EchoRequest::descriptor() == nullptr) return 1;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      args[0] == "help") {
    std::cout << bevrpc::cli::kUsage;
    return args.empty() ? bevrpc::cli::kExitUsage : 0;
  }
  if (args[0] != "call") {
    return bevrpc::cli::Usage(absl::StrCat("unknown command \"", args[0], "\""));
  }
  args.erase(args.begin());
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      std::cout << bevrpc::cli::kUsage;
      return 0;
    }
  }
  bevrpc::cli::CallArgs call;
  std::string error = bevrpc::cli::ParseCallArgs(args, &call);
  if (!error.empty()) return bevrpc::cli::Usage(error);
  return bevrpc::cli::Call(call);
}
