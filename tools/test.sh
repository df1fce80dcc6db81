#!/usr/bin/env bash
# The README's second command: installs what is missing and runs every test,
# first in the default build, then under AddressSanitizer + UBSan.
# Prints Bazel's per-target summary and ends with "N passed, M failed"
# (test targets, both configurations counted).
#
# Usage: bash tools/test.sh [extra bazel test flags]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
for config in "" "--config=asan"; do
  echo "== bazel test //... ${config}" >&2
  bazel test //... --test_summary=short ${config} "$@" 2>&1 | tee -a "$log" >&2
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
done

passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|FAILED TO BUILD)' "$log")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # The build failed before any test ran.
fi
echo "${passed} passed, ${failed} failed"
exit "$rc"
