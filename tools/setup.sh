#!/usr/bin/env bash
# Installs the Debian 12 packages bevrpc needs to build and test, and only
# those that are missing. Idempotent: a second run installs nothing.
#
# Usage: bash tools/setup.sh
set -euo pipefail

pkgs=(
  bazel-bootstrap        # Bazel 4.2.3 (WORKSPACE mode, offline)
  g++ pkg-config
  libevent-dev           # transport/: bufferevents, listeners, rate limits
  libssl-dev openssl     # transport/tls.h (OpenSSL 3); tests make certificates
  libprotobuf-dev libprotoc-dev protobuf-compiler  # wire format, plugin, protoc
  libabsl-dev            # absl::Status, strings, synchronization, time, flags
  libgtest-dev libgmock-dev
  libbenchmark-dev       # microbenchmarks
  python3 iproute2       # test helpers (ss) and scripts
  etcd-server            # tests start a real etcd (rpc/naming etcd:// tests)
  grpc-proto             # gRPC's .proto files (/usr/share/grpc-proto): @grpc_proto,
                         # code-generation tests against real third-party protos
  # tools/fuzz.sh: clang 14 and its runtimes (libclang_rt.fuzzer, asan,
  # ubsan); libFuzzer itself ships in libclang-rt-14-dev on Debian 12.
  clang libclang-rt-14-dev
  # Observability (docs/observability.md): a real Prometheus scrapes a
  # server's port in tests/e2e/observability:prometheus_test; headless
  # Chromium renders /status in tests/e2e/observability:status_page_test;
  # Chart.js (/usr/share/javascript/chart.js) is embedded into the binary at
  # build time (@chart_js in WORKSPACE) so /status draws charts air-gapped.
  prometheus chromium libjs-chart.js
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#pkgs[@]} packages present" >&2
else
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
