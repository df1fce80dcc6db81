#!/usr/bin/env bash
# protoc with protoc-gen-bevrpc on a .proto with a method named after a C++
# keyword must fail and print which file, service and method are at fault.
#
# Usage (from the runfiles tree): protoc_error_test.sh PROTOC PLUGIN
set -uo pipefail

protoc="$1"
plugin="$2"
out="$(mktemp -d)"
trap 'rm -rf "${out}"' EXIT

output="$("${protoc}" --plugin=protoc-gen-bevrpc="${plugin}" \
  --bevrpc_out="${out}" -I. tests/codegen/bad/keyword.proto 2>&1)"
rc=$?
echo "protoc exited with ${rc}:"
echo "${output}"

expected='tests/codegen/bad/keyword.proto: service "acme.feed.Feed", method "delete": "delete" is a C++ keyword'
if [ "${rc}" -eq 0 ]; then
  echo "FAIL: protoc succeeded" >&2
  exit 1
fi
if ! grep -qF "${expected}" <<<"${output}"; then
  echo "FAIL: expected the output to contain: ${expected}" >&2
  exit 1
fi
if [ -n "$(ls -A "${out}")" ]; then
  echo "FAIL: protoc wrote files despite the error:" >&2
  ls -R "${out}" >&2
  exit 1
fi
echo "PASS"
