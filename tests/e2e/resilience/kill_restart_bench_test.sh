#!/usr/bin/env bash
# The resilience issue's first "must show", with real processes: a 12 s
# load test over three echo_servers behind list:/// keeps "errors":0
# while one replica is killed with SIGKILL (its calls in flight fail with
# UNAVAILABLE and are retried elsewhere: Echo is NO_SIDE_EFFECTS) and
# another is stopped with SIGTERM (GOAWAY and drain) and started again on
# the same port. The kill and restart happen at fixed points of the run:
# they are the scenario, not a wait for an event.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
source "$runfiles/tests/testing/server.sh"
echo_server="$runfiles/services/echo/echo_server"
bevrpc="$runfiles/tools/bevrpc"

fail() { echo "FAIL: $*"; exit 1; }

for i in 1 2 3; do
  start_server "echo$i" "$echo_server" --port=0
  eval "addr$i=$addr"
done
target="list:///$addr1,$addr2,$addr3"
port2=${addr2##*:}
echo "target: $target"

out="$TEST_TMPDIR/bench.json"
"$bevrpc" bench "$target" bevrpc.echo.Echo/Echo '{"message":"x","delay_ms":2}' \
  -c 16 -z 12s --timeout 2s --json >"$out" &
bench_pid=$!

sleep 4  # 1 s of warm-up, then 3 s measured
echo "SIGKILL echo1 ($addr1)"
kill -KILL "${_server_pids[echo1]}"
wait "${_server_pids[echo1]}" 2>/dev/null || true
unset "_server_pids[echo1]"

sleep 2
echo "SIGTERM echo2 ($addr2), then start it again on port $port2"
stop_server echo2
start_server echo2b "$echo_server" --port="$port2"
[ "$addr" = "$addr2" ] || fail "restarted on $addr, want $addr2"

rc=0
wait "$bench_pid" || rc=$?
cat "$out"
python3 - "$(cat "$out")" "$rc" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["errors"] == 0, "errors: %s" % r.get("errors_by_code", r)
assert int(sys.argv[2]) == 0, "bench exit status %s" % sys.argv[2]
assert r["calls"] > 1000, r["calls"]
print("calls %d, errors 0, p99 %s" % (r["calls"], r.get("latency_p99_us", r.get("p99_us"))))
PY
echo PASS
