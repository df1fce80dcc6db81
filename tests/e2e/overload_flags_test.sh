#!/usr/bin/env bash
# echo_server's overload and fault-injection flags (services/builtin/
# server_main.h), driven from the shell with the CLI: bad values are clear
# startup errors (exit 2, naming the flag and the accepted form); good
# rules are logged at start and applied to the methods they name only.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
echo_server="$runfiles/services/echo/echo_server"
source "$runfiles/tests/testing/server.sh"

fail() { echo "FAIL: $*"; exit 1; }

# Bad flags: exit status 2 and a message with WANT in it (server.sh).
expect_bad() { expect_bad_flags "$echo_server" "$@"; }
expect_bad "--max_concurrent_calls=-1" --max_concurrent_calls=-1
expect_bad "--max_concurrent_calls=banana: expected a number of calls (0 = unlimited) or auto" \
  --max_concurrent_calls=banana
expect_bad "--max_concurrent_calls=12x" --max_concurrent_calls=12x
expect_bad "METHOD_OR_*:PERCENT:CODE" --fault_abort=bevrpc.echo.Echo/Echo:10
expect_bad "--fault_abort=*:10:NOPE" --fault_abort='*:10:NOPE'
expect_bad "is not an error code" --fault_abort='*:10:OK'
expect_bad "PERCENT must be a number from 0 to 100" --fault_abort='*:150:UNAVAILABLE'
expect_bad "--fault_delay=*:50:soon" --fault_delay='*:50:soon'
expect_bad "METHOD_OR_*:PERCENT:DURATION" --fault_delay='*:x:1s'
# A rule for a method the binary does not serve.
expect_bad 'names method "no.Such/Method"' \
  --fault_abort=no.Such/Method:10:UNAVAILABLE

# Echo aborted (by name and by number), Chat... untouched; health works.
start_server echo "$echo_server" --port=0 --max_concurrent_calls=100 \
  --fault_abort=bevrpc.echo.Echo/Echo:100:UNAVAILABLE \
  --fault_delay='*:100:1ms'
grep -qF "FAULT INJECTION ON: abort 100% of calls to bevrpc.echo.Echo/Echo with UNAVAILABLE" \
  "$TEST_TMPDIR/echo.err" || fail "no abort line in: $(cat "$TEST_TMPDIR/echo.err")"
grep -qF "FAULT INJECTION ON: delay 100% of calls to * by 1ms" \
  "$TEST_TMPDIR/echo.err" || fail "no delay line in: $(cat "$TEST_TMPDIR/echo.err")"
rc=0
err=$("$cli" call "$addr" bevrpc.echo.Echo/Echo '{"message":"x"}' 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 78 ] || fail "aborted call exited $rc, want 78 (UNAVAILABLE): $err"
case "$err" in
  *"fault injected: 100% of calls to bevrpc.echo.Echo/Echo are aborted"*) ;;
  *) fail "aborted call said: $err" ;;
esac
"$cli" health "$addr" >/dev/null || fail "health failed"
stop_server echo

# The adaptive limit: starts, says so, and serves.
start_server auto "$echo_server" --port=0 --max_concurrent_calls=auto
grep -qF "adaptive limit on unary calls, starting at 40" "$TEST_TMPDIR/auto.err" ||
  fail "no adaptive limit line in: $(cat "$TEST_TMPDIR/auto.err")"
out=$("$cli" call "$addr" bevrpc.echo.Echo/Echo '{"message":"auto"}') ||
  fail "call under --max_concurrent_calls=auto failed: $out"
case "$out" in *auto*) ;; *) fail "call under auto said: $out" ;; esac
stop_server auto

start_server echo2 "$echo_server" --port=0 --fault_abort='*:100:9'
rc=0
"$cli" health "$addr" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 73 ] || fail "health with *:100:9 exited $rc, want 73 (FAILED_PRECONDITION)"
stop_server echo2
echo PASS
