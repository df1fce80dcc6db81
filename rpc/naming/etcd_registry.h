// The etcd registry's layout, shared by EtcdResolver (reads) and Registrar
// (writes): one key per endpoint, PREFIX + "HOST:PORT" (PREFIX ends in '/'),
// whose value is JSON (rpc/naming/etcd_registry.proto):
//
//   {"addr":"10.0.0.1:8080","weight":2,"zone":"a","version":"1.4","id":"e-1"}
//
//   std::string key = naming::RegistryKey("svc/echo/", "10.0.0.1:8080");
//   std::string value = naming::RegistryValueJson(info);
//   absl::StatusOr<EndpointInfo> back = naming::ParseRegistryValue(value);
//
// Plain functions; thread-safe.
#ifndef BEVRPC_RPC_NAMING_ETCD_REGISTRY_H_
#define BEVRPC_RPC_NAMING_ETCD_REGISTRY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/naming/resolver.h"

namespace bevrpc::naming {

// `prefix` must end in '/'.
std::string RegistryKey(absl::string_view prefix, absl::string_view host_port);

// The JSON value for `info` (zero-value fields left out).
std::string RegistryValueJson(const EndpointInfo& info);

// INVALID_ARGUMENT naming the problem for anything but a JSON object with a
// valid "addr" (HOST:PORT or [V6]:PORT); weight 0 or absent becomes 1.
absl::StatusOr<EndpointInfo> ParseRegistryValue(absl::string_view json);

}  // namespace bevrpc::naming

#endif  // BEVRPC_RPC_NAMING_ETCD_REGISTRY_H_
