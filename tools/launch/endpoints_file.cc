#include "tools/launch/endpoints_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace bevrpc::launch {

std::string FormatEndpoints(absl::string_view service,
                            const std::vector<EndpointLine>& endpoints) {
  std::string text =
      absl::StrCat("# ready replicas of ", service, ", by bevrpc-launch\n");
  for (const EndpointLine& e : endpoints) {
    absl::StrAppend(&text, e.address, " id=", e.id, "\n");
  }
  return text;
}

absl::Status WriteEndpointsFile(const std::string& path,
                                absl::string_view service,
                                const std::vector<EndpointLine>& endpoints) {
  const std::string text = FormatEndpoints(service, endpoints);
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat(
        "cannot replace ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace bevrpc::launch
