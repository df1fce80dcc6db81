#!/usr/bin/env bash
# Issue 14, must-show 1: after 3 OK calls and 1 NOT_FOUND call to a fresh
# echo_server, GET /metrics on the server's own RPC port counts exactly
# those; then `bevrpc stats` reads the same page (one table, and --watch
# --count 2 while calls run), and --metrics=off records nothing.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
source "$runfiles/tests/testing/server.sh"
source "$runfiles/tests/e2e/observability/http.sh"

fail() { echo "FAIL: $*"; exit 1; }

start_server echo "$runfiles/services/echo/echo_server" --port=0
for i in 1 2 3; do
  got=$("$cli" call "$addr" bevrpc.echo.Echo/Echo "{\"message\":\"m$i\"}")
  [ "$got" = "{\"message\":\"m$i\"}" ] || fail "call $i: got $got"
done
rc=0
"$cli" call "$addr" bevrpc.echo.Echo/Echo '{"message":"x","fail_code":5}' \
  >/dev/null 2>&1 || rc=$?
[ "$rc" = 69 ] || fail "the NOT_FOUND call exited $rc, not 69"

page=$(http_get "http://$addr/metrics")
# One line per series; labels in the order the family declares them.
expect_line() {
  grep -qxF "$1" <<<"$page" || {
    echo "$page" | grep -E "^${2:-bevrpc_server_handl}" | head -40
    fail "no line: $1"
  }
}
expect_line 'bevrpc_server_handled_total{service="bevrpc.echo.Echo",method="Echo",code="OK"} 3'
expect_line 'bevrpc_server_handled_total{service="bevrpc.echo.Echo",method="Echo",code="NOT_FOUND"} 1'
expect_line 'bevrpc_server_handling_seconds_bucket{service="bevrpc.echo.Echo",method="Echo",le="+Inf"} 4'
expect_line 'bevrpc_server_handling_seconds_count{service="bevrpc.echo.Echo",method="Echo"} 4'
expect_line 'bevrpc_server_started_total{service="bevrpc.echo.Echo",method="Echo"} 4'
expect_line 'bevrpc_server_in_flight{service="bevrpc.echo.Echo",method="Echo"} 0'
grep -q '^# TYPE bevrpc_server_handling_seconds histogram$' <<<"$page" ||
  fail "no histogram TYPE line"
grep -q '^# TYPE bevrpc_server_handled_total counter$' <<<"$page" ||
  fail "no counter TYPE line"
grep -qE '^process_resident_memory_bytes [0-9.e+]+$' <<<"$page" ||
  fail "no process_resident_memory_bytes"
grep -qE '^bevrpc_build_info\{version="[^"]+"\} 1$' <<<"$page" ||
  fail "no bevrpc_build_info"
echo "PASS: /metrics counts 3 OK, 1 NOT_FOUND, +Inf bucket 4"

# bevrpc stats: no calls in the interval -> 0 QPS, the totals so far.
out=$("$cli" stats "$addr" --interval 200ms)
echo "$out"
grep -qE '^METHOD +QPS +ERR% +P50 +P99 +INFLIGHT +TOTAL$' <<<"$out" ||
  fail "stats: no header"
grep -qE '^bevrpc\.echo\.Echo/Echo +0\.0 +0\.00 +- +- +0 +4$' <<<"$out" ||
  fail "stats: wrong Echo line"

# While calls run, --watch prints two tables with Echo calls in them.
"$cli" bench "$addr" bevrpc.echo.Echo/Echo '{"message":"b"}' -c 2 -z 20s \
  >/dev/null 2>&1 &
bench=$!
out=$("$cli" stats "$addr" --watch --count 2 --interval 1s)
kill "$bench" 2>/dev/null || true
wait "$bench" 2>/dev/null || true
echo "$out"
[ "$(grep -c '^== ' <<<"$out")" = 2 ] || fail "stats --watch: not 2 tables"
busy=$(grep -cE '^bevrpc\.echo\.Echo/Echo +[1-9][0-9]*\.[0-9] +0\.00 +[0-9.]+(us|ms|s) ' <<<"$out" || true)
[ "$busy" = 2 ] || fail "stats --watch: Echo not busy in both tables"

# An address that does not answer: exit 78 (UNAVAILABLE), cause on stderr.
rc=0
"$cli" stats "127.0.0.1:$(free_port)" --timeout 2s >/dev/null 2>&1 || rc=$?
[ "$rc" = 78 ] || fail "stats of a closed port exited $rc, not 78"
echo "PASS: bevrpc stats"

# --metrics=off: calls are not recorded.
stop_server echo
start_server echo "$runfiles/services/echo/echo_server" --port=0 --metrics=off
"$cli" call "$addr" bevrpc.echo.Echo/Echo '{"message":"m"}' >/dev/null
page=$(http_get "http://$addr/metrics")
if grep -q '^bevrpc_server_handled_total' <<<"$page"; then
  fail "--metrics=off still records calls"
fi
grep -qE '^process_open_fds [0-9]+$' <<<"$page" || fail "no process metrics"
echo "PASS: --metrics=off"
