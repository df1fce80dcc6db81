#!/usr/bin/env bash
# Compares the code protoc-gen-bevrpc generates for greeter.proto with the
# checked-in goldens, byte for byte. Run by `bazel test`, from the runfiles
# tree.
set -uo pipefail

dir=tests/codegen/golden
rc=0
for ext in h cc; do
  generated="${dir}/greeter.bevrpc.${ext}"
  golden="${dir}/greeter.bevrpc.${ext}.golden"
  if ! diff -u --label "${golden}" --label "generated ${ext}" \
      "${golden}" "${generated}"; then
    echo "FAIL: ${generated} differs from ${golden} (diff above)." >&2
    rc=1
  fi
done
if [ "${rc}" -ne 0 ]; then
  echo "If the change is intended, regenerate the goldens with" >&2
  echo "  bash tests/codegen/update_golden.sh" >&2
  echo "and review the diff." >&2
else
  echo "PASS: greeter.bevrpc.h and greeter.bevrpc.cc match their goldens."
fi
exit "${rc}"
