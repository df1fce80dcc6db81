#!/usr/bin/env bash
# The resilience issue's fault matrix, with real processes: bench over
# three echo_servers while one of them misbehaves. Prints one line per
# case (the figures docs/resilience.md quotes) and checks what must hold:
#  - black hole (one replica SIGSTOPped): without hedging, calls picked for
#    it time out; with hedging (20 ms), none fails and none waits for the
#    call timeout;
#  - one replica failing 50 % of calls with UNAVAILABLE (fault injection):
#    0 errors for the idempotent Echo, and the sick replica serves less
#    than its share.
# The latency figures are printed, never compared with a clock bound.
# Types come from the .proto: server reflection is a stream, and a stream
# picked for the stopped replica would wait for it.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
source "$runfiles/tests/testing/server.sh"
echo_server="$runfiles/services/echo/echo_server"
bevrpc="$runfiles/tools/bevrpc"

fail() { echo "FAIL: $*"; exit 1; }

hedging='{"methodConfig":[{"name":[{"service":"bevrpc.echo.Echo","method":"Echo"}],
  "hedgingPolicy":{"maxAttempts":2,"hedgingDelay":"0.02s"}}]}'

# run_bench NAME TARGET ARGS...: 4 s of -c 8 load; the JSON line in $NAME.json.
run_bench() {
  local name=$1 target=$2
  shift 2
  "$bevrpc" bench "$target" bevrpc.echo.Echo/Echo '{"message":"x"}' \
    -c 8 -z 4s --warmup 0s --timeout 1s --json "$@" \
    --proto services/echo/echo.proto -I "$runfiles" \
    >"$TEST_TMPDIR/$name.json" || true
}

# field NAME KEY: a number from $NAME.json.
field() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$TEST_TMPDIR/$1.json" "$2"
}

report() {
  printf '%-28s calls %-7s errors %-5s p50 %8s us  p99 %10s us\n' "$1" \
    "$(field "$1" calls)" "$(field "$1" errors)" "$(field "$1" p50_us)" \
    "$(field "$1" p99_us)"
}

for i in 1 2 3; do
  start_server "echo$i" "$echo_server" --port=0
  eval "addr$i=$addr"
done
target="list:///$addr1,$addr2,$addr3"

run_bench healthy "$target"
report healthy
[ "$(field healthy errors)" -eq 0 ] || fail "errors with every replica healthy"

# Black hole: the process is stopped, its socket still accepts.
kill -STOP "${_server_pids[echo1]}"
run_bench black_hole "$target"
run_bench black_hole_hedged "$target" --service_config "$hedging"
kill -CONT "${_server_pids[echo1]}"
report black_hole
report black_hole_hedged
[ "$(field black_hole errors)" -gt 0 ] ||
  fail "no call timed out on the stopped replica without hedging"
[ "$(field black_hole_hedged errors)" -eq 0 ] || fail "errors with hedging"
python3 - "$TEST_TMPDIR/black_hole_hedged.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
# No call waited for its 1 s timeout: the hedge answered.
assert r["p99_us"] < 1e6, r
PY

# 50 % UNAVAILABLE on one replica.
stop_server echo1
start_server sick "$echo_server" --port="${addr1##*:}" \
  --fault_abort='*:50:UNAVAILABLE'
run_bench half_failing "$target"
report half_failing
[ "$(field half_failing errors)" -eq 0 ] ||
  fail "errors for idempotent calls with one replica failing half its calls"
python3 - "$TEST_TMPDIR/half_failing.json" "$addr1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
eps = r["endpoints"]
share = eps.get(sys.argv[2], 0) / sum(eps.values())
print("sick replica's share of calls: %.1f %%" % (100 * share))
# Ejected: far below its third.
assert share < 0.15, share
PY
echo PASS
