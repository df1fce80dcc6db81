#!/usr/bin/env bash
# kv_server --data_dir survives kill -9: for each fsync policy, Puts go in
# through the CLI while the server is killed with SIGKILL; restarted on the
# same directory, it must return every Put that was acknowledged, with its
# value and version. Also: a second server on a directory in use fails with
# a message naming it, and a bad --fsync is a usage error.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
kv="$runfiles/services/kv/kv_server"
source "$runfiles/tests/testing/server.sh"

fail() { echo "FAIL: $*"; exit 1; }

expect_bad_flags "$kv" "--fsync=sometimes: expected always, interval or never" \
  --data_dir="$TEST_TMPDIR/unused" --fsync=sometimes

# put_until_killed ADDR ACKED: Puts key0, key1, ... (at most 2000, each call
# bounded by `timeout`), appending "KEY VERSION" to ACKED for each call that
# succeeded; stops at the first failure (the server is gone).
put_until_killed() {
  local addr=$1 acked=$2 i out
  for i in $(seq 0 1999); do
    out=$(timeout 20 "$cli" call "$addr" bevrpc.kv.KeyValue/Put \
      "{\"key\":\"key$i\",\"value\":\"value$i\"}" 2>/dev/null) || return 0
    echo "key$i $(sed -n 's/.*"version":"\([0-9]*\)".*/\1/p' <<<"$out")" >>"$acked"
  done
}

for policy in always interval never; do
  dir="$TEST_TMPDIR/data_$policy"
  acked="$TEST_TMPDIR/acked_$policy"
  : >"$acked"
  start_server "kv_$policy" "$kv" --port=0 --data_dir="$dir" --fsync="$policy"
  pid=${_server_pids[kv_$policy]}
  put_until_killed "$addr" "$acked" &
  writer=$!
  # Kill once at least 50 Puts were acknowledged (bounded wait).
  for _ in $(seq 1 600); do
    [ "$(wc -l <"$acked")" -ge 50 ] && break
    sleep 0.1
  done
  [ "$(wc -l <"$acked")" -ge 50 ] || fail "$policy: fewer than 50 Puts acknowledged in 60 s"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  unset "_server_pids[kv_$policy]"
  wait "$writer"
  n=$(wc -l <"$acked")
  echo "$policy: $n Puts acknowledged before kill -9"

  start_server "kv_${policy}_again" "$kv" --port=0 --data_dir="$dir" --fsync="$policy"
  grep -q "kv: loaded .* entries" "$TEST_TMPDIR/kv_${policy}_again.err" ||
    fail "$policy: no 'loaded' line: $(cat "$TEST_TMPDIR/kv_${policy}_again.err")"
  while read -r key version; do
    got=$("$cli" call "$addr" bevrpc.kv.KeyValue/Get "{\"key\":\"$key\"}") ||
      fail "$policy: acknowledged $key lost after kill -9"
    want="{\"entry\":{\"key\":\"$key\",\"value\":\"value${key#key}\",\"version\":\"$version\"}}"
    [ "$got" = "$want" ] || fail "$policy: $key: got $got, want $want"
  done <"$acked"

  # The directory is locked while the server runs.
  rc=0
  "$kv" --port=0 --data_dir="$dir" >/dev/null 2>"$TEST_TMPDIR/second.err" || rc=$?
  [ "$rc" -eq 1 ] || fail "second server on $dir exited $rc, want 1"
  grep -qF "data directory $dir is in use by another process" "$TEST_TMPDIR/second.err" ||
    fail "second server: $(cat "$TEST_TMPDIR/second.err")"
  stop_server "kv_${policy}_again"
done
echo "kv kill -9 OK"
