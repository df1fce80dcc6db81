#!/usr/bin/env bash
# Regenerates tests/codegen/golden/*.golden from the current protoc-gen-bevrpc.
# Run after an intended change to the generator, then review `git diff`.
#
# Usage: bash tests/codegen/update_golden.sh [extra bazel build flags]
# (BAZEL=/path/to/bazel to use another Bazel command.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BAZEL="${BAZEL:-bazel}"
"${BAZEL}" build //tests/codegen/golden:greeter_bevrpc "$@"
bin="$("${BAZEL}" info bazel-bin "$@")"
for ext in h cc; do
  install -m 0644 "${bin}/tests/codegen/golden/greeter.bevrpc.${ext}" \
    "tests/codegen/golden/greeter.bevrpc.${ext}.golden"
  echo "updated tests/codegen/golden/greeter.bevrpc.${ext}.golden"
done
