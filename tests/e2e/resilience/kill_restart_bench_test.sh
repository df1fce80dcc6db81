#!/usr/bin/env bash
# The resilience issue's first "must show", with real processes: a 12 s
# load test over three echo_servers behind list:/// keeps "errors":0
# while one replica is killed with SIGKILL (its calls in flight fail with
# UNAVAILABLE and are retried elsewhere: Echo is NO_SIDE_EFFECTS) and
# another is stopped with SIGTERM (GOAWAY and drain) and started again on
# the same port. The test waits for the bench's connections to all three
# servers, places the kill and the restart a few seconds into the run, and
# checks that both happened while the bench was running and that it
# reconnected to the restarted server. The run is long (20 s) so that a
# slow restart (a sanitizer build) and the client's reconnect backoff
# (1 s, 1.6 s, 2.56 s... while the port is closed) end well before it.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
source "$runfiles/tests/testing/server.sh"
echo_server="$runfiles/services/echo/echo_server"
bevrpc="$runfiles/tools/bevrpc"

fail() { echo "FAIL: $*"; exit 1; }

# connected PORT: true if a client socket is established to 127.0.0.1:PORT
# (only the bench connects to the servers here).
connected() {
  python3 - "$1" <<'PY'
import sys
want = "%04X" % int(sys.argv[1])
for line in open("/proc/net/tcp").readlines()[1:]:
    f = line.split()
    if f[2].endswith(":" + want) and f[3] == "01":
        sys.exit(0)
sys.exit(1)
PY
}

# wait_connected PORT...: waits (up to 60 s) until the bench is connected
# to every PORT; fails if it ended first.
wait_connected() {
  local _ p ok
  for _ in $(seq 1 600); do
    kill -0 "$bench_pid" 2>/dev/null || fail "the bench ended before connecting to $*"
    ok=1
    for p in "$@"; do connected "$p" || ok=0; done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  fail "the bench did not connect to $* within 60 s"
}

still_running() {
  kill -0 "$bench_pid" 2>/dev/null || fail "the bench ended before $1"
}

for i in 1 2 3; do
  start_server "echo$i" "$echo_server" --port=0
  eval "addr$i=$addr"
done
target="list:///$addr1,$addr2,$addr3"
port2=${addr2##*:}
echo "target: $target"

out="$TEST_TMPDIR/bench.json"
"$bevrpc" bench "$target" bevrpc.echo.Echo/Echo '{"message":"x","delay_ms":2}' \
  -c 16 -z 20s --timeout 2s --json >"$out" &
bench_pid=$!

wait_connected "${addr1##*:}" "$port2" "${addr3##*:}"
sleep 3  # Where in the run: after the 1 s warm-up, 2 s into the measurement.
still_running "the kill"
echo "SIGKILL echo1 ($addr1)"
kill -KILL "${_server_pids[echo1]}"
wait "${_server_pids[echo1]}" 2>/dev/null || true
unset "_server_pids[echo1]"

sleep 2  # Where in the run: 2 s after the kill.
still_running "the SIGTERM"
echo "SIGTERM echo2 ($addr2), then start it again on port $port2"
stop_server echo2
start_server echo2b "$echo_server" --port="$port2"
[ "$addr" = "$addr2" ] || fail "restarted on $addr, want $addr2"
wait_connected "$port2"
echo "the bench reconnected to the restarted echo2"

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
