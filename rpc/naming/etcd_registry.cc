#include "rpc/naming/etcd_registry.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "rpc/naming/etcd_registry.pb.h"
#include "rpc/naming/target.h"

namespace bevrpc::naming {

std::string RegistryKey(absl::string_view prefix,
                        absl::string_view host_port) {
  return absl::StrCat(prefix, host_port);
}

std::string RegistryValueJson(const EndpointInfo& info) {
  etcd::RegistryValue v;
  v.set_addr(info.address);
  if (info.weight > 1) v.set_weight(info.weight);
  v.set_zone(info.zone);
  v.set_version(info.version);
  v.set_id(info.id);
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(v, &out, options);
  return out;
}

absl::StatusOr<EndpointInfo> ParseRegistryValue(absl::string_view json) {
  etcd::RegistryValue v;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto s = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &v, options);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry value is not the expected JSON object (",
                     s.ToString(), "): ", json.substr(0, 200)));
  }
  if (v.addr().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "registry value has no \"addr\": ", json.substr(0, 200)));
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(v.addr());
  if (!hp.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry value has a bad \"addr\": ",
                     hp.status().message()));
  }
  EndpointInfo info;
  info.address = hp->ToString();
  info.weight = v.weight() == 0 ? 1 : v.weight();
  info.zone = v.zone();
  info.version = v.version();
  info.id = v.id();
  return info;
}

}  // namespace bevrpc::naming
