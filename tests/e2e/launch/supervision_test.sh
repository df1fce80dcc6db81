#!/usr/bin/env bash
# Supervision edge cases: a replica that keeps failing goes FATAL and the
# launcher gives up (exit 1, naming it); log_line readiness; a replica
# that never gets ready is killed and counted as a failure; Stop, Start
# and Restart through the control service, NOT_FOUND for unknown names.
set -euo pipefail
source "${TEST_SRCDIR}/bevrpc/tests/e2e/launch/launch_lib.sh"

# 1. Always failing: FATAL after 5 fast failures; exit 1 before "ready".
t="$TEST_TMPDIR/fail.textproto"
cat >"$t" <<'TOPO'
services { name: "bad" binary: "/bin/false" }
TOPO
start_launcher "$t"
rc=0
for _ in $(seq 1 600); do
  kill -0 "$launcher_pid" 2>/dev/null || break
  sleep 0.1
done
wait "$launcher_pid" || rc=$?
launcher_pid=""
[ "$rc" = 1 ] || fail "exit $rc for an always failing replica, want 1"
grep -q 'bad/0: FATAL: gave up after 5 fast failures in a row (last: exit 1)' \
  "$launcher_err" || fail "no FATAL line"
grep -q 'bad/0 failed to start (FATAL, last exit: exit 1' "$launcher_err" ||
  fail "no startup failure line"
[ "$(grep -c 'bad/0: restarting in' "$launcher_err")" = 5 ] || fail "restart count"
grep -q '^ready' "$launcher_out" && fail "printed ready"

# 2. log_line readiness and a replica that never gets ready.
rm -rf "$state_dir"
t="$TEST_TMPDIR/ok.textproto"
cat >"$t" <<'TOPO'
services {
  name: "worker" binary: "/bin/sh" replicas: 2
  args: "-c" args: "echo \"{id} is up\"; exec sleep 600"
  readiness { log_line: "is up" }
  stop_grace: "2s"
}
services {
  name: "mute" binary: "/bin/sleep" args: "600" restart: NEVER
  readiness { log_line: "never printed" timeout: "1s" }
}
TOPO
start_launcher "$t"
wait_status '[p["state"] for p in P if p["service"] == "worker"] == ["RUNNING"] * 2' 30
grep -q '^worker/1 | worker/1 is up$' "$launcher_out" || fail "prefixed line"
# mute: killed after 1 s without its line, counted as a failure; NEVER
# restarts it, so the launcher gives up on the startup.
for _ in $(seq 1 300); do
  kill -0 "$launcher_pid" 2>/dev/null || break
  sleep 0.1
done
rc=0
wait "$launcher_pid" || rc=$?
launcher_pid=""
[ "$rc" = 1 ] || fail "exit $rc, want 1 (mute never ready)"
grep -q 'mute/0: not ready after 1s: SIGKILL' "$launcher_err" || fail "no readiness timeout"
grep -q 'mute/0 failed to start (STOPPED, last exit: signal 9' "$launcher_err" ||
  fail "no startup failure for mute"

# 3. Stop, Start, Restart via the control service.
rm -rf "$state_dir"
cat >"$t" <<'TOPO'
services {
  name: "worker" binary: "/bin/sh" replicas: 2
  args: "-c" args: "echo \"{id} is up\"; exec sleep 600"
  readiness { log_line: "is up" }
  stop_grace: "2s"
}
TOPO
start_launcher "$t"
wait_ready
remember_pids
"$cli" call "$control" bevrpc.launch.Launcher/Stop '{"service":"worker","replica":1}' >/dev/null
wait_status '[p["state"] for p in P] == ["RUNNING", "STOPPED"] and P[1]["pid"] == 0' 30
grep -q 'worker/1 (pid [0-9]*) ended: signal 15' "$launcher_err" || fail "SIGTERM stop"
"$cli" call "$control" bevrpc.launch.Launcher/Start '{"service":"worker"}' >/dev/null
wait_status '[p["state"] for p in P] == ["RUNNING", "RUNNING"]' 30
remember_pids
old=$(status_value 'P[0]["pid"]')
"$cli" call "$control" bevrpc.launch.Launcher/Restart '{"service":"worker","replica":0}' >/dev/null
wait_status "P[0][\"state\"] == \"RUNNING\" and P[0][\"pid\"] not in (0, $old) and P[0][\"restarts\"] == 0" 30
remember_pids
rc=0
err=$("$cli" call "$control" bevrpc.launch.Launcher/Stop '{"service":"nope"}' 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "Stop of an unknown service succeeded"
[ "$err" = 'NOT_FOUND: no service "nope" (services: worker)' ] || fail "error: $err"
err=$("$cli" call "$control" bevrpc.launch.Launcher/Restart '{"service":"worker","replica":7}' 2>&1) || true
[ "$err" = 'NOT_FOUND: service "worker" has no replica 7 (replicas: 0..1)' ] ||
  fail "error: $err"
all=$(pids)
kill -TERM "$launcher_pid"
rc=0
wait "$launcher_pid" || rc=$?
launcher_pid=""
[ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
wait_none_alive 5 $all
echo PASS
