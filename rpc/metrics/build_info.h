// The bevrpc version, exported as bevrpc_build_info{version="..."} 1 by
// RegisterProcessMetrics() and shown on status pages.
//
//   std::cout << bevrpc::kBevrpcVersion;
//
// Change it when cutting a release. Constants only; thread-safe.
#ifndef BEVRPC_RPC_METRICS_BUILD_INFO_H_
#define BEVRPC_RPC_METRICS_BUILD_INFO_H_

namespace bevrpc {

inline constexpr char kBevrpcVersion[] = "0.1.0";

}  // namespace bevrpc

#endif  // BEVRPC_RPC_METRICS_BUILD_INFO_H_
