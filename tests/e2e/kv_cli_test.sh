#!/usr/bin/env bash
# kv_server driven by the CLI, as a user would: Put, Get, a compare-and-set
# conflict, List, and a missing key.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
source "$runfiles/tests/testing/server.sh"

start_server kv "$runfiles/services/kv/kv_server" --port=0

expect() {  # expect WANT GOT WHAT
  [ "$2" = "$1" ] || { echo "$3: got '$2', want '$1'"; exit 1; }
}

expect '{"entry":{"key":"city","value":"Oslo","version":"1"}}' \
  "$("$cli" call "$addr" bevrpc.kv.KeyValue/Put '{"key":"city","value":"Oslo"}')" put
expect '{"entry":{"key":"city","value":"Oslo","version":"1"}}' \
  "$("$cli" call "$addr" bevrpc.kv.KeyValue/Get '{"key":"city"}')" get

set +e
err=$("$cli" call "$addr" bevrpc.kv.KeyValue/Put \
  '{"key":"city","value":"Rome","expected_version":"5"}' 2>&1 >/dev/null)
rc=$?
set -e
expect 73 "$rc" "compare-and-set exit code"
expect 'FAILED_PRECONDITION: key "city": expected_version 5 but the key has version 1' \
  "$err" "compare-and-set error"

expect '{"entries":[{"key":"city","value":"Oslo","version":"1"}]}' \
  "$("$cli" call "$addr" bevrpc.kv.KeyValue/List '{"prefix":"ci"}')" list

set +e
err=$("$cli" call "$addr" bevrpc.kv.KeyValue/Get '{"key":"nope"}' 2>&1 >/dev/null)
rc=$?
set -e
expect 69 "$rc" "missing key exit code"
expect 'NOT_FOUND: key "nope" not found' "$err" "missing key error"

stop_server kv
echo "kv via CLI OK"
