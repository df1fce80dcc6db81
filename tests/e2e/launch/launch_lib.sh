# Shell helpers for bevrpc-launch end-to-end tests. Source it:
#
#   source "$TEST_SRCDIR/bevrpc/tests/e2e/launch/launch_lib.sh"
#   write_topology "$TEST_TMPDIR/t.textproto"      # echo x2 -> kv x1
#   start_launcher "$TEST_TMPDIR/t.textproto"       # sets $control, $launcher_pid
#   wait_ready
#   status_json | check_status 'all(p["state"] == "RUNNING" for p in P)'
#
# Everything the launcher started is killed when the script exits, even on
# failure: the launcher gets SIGTERM, then SIGKILL, and every child pid the
# tests saw is sent SIGKILL.
runfiles="${TEST_SRCDIR}/bevrpc"
launch="$runfiles/tools/launch/bevrpc-launch"
cli="$runfiles/tools/bevrpc"
launcher_out="$TEST_TMPDIR/launcher.out"
launcher_err="$TEST_TMPDIR/launcher.err"
state_dir="$TEST_TMPDIR/state"
launcher_pid=""
seen_pids=""

fail() {
  echo "FAIL: $*"
  echo "--- launcher stdout:"; cat "$launcher_out" 2>/dev/null | tail -40
  echo "--- launcher stderr:"; cat "$launcher_err" 2>/dev/null | tail -60
  exit 1
}

_cleanup() {
  if [ -n "$launcher_pid" ] && kill -0 "$launcher_pid" 2>/dev/null; then
    kill -TERM "$launcher_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$launcher_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$launcher_pid" 2>/dev/null || true
  fi
  local p
  for p in $seen_pids; do kill -KILL "$p" 2>/dev/null || true; done
}
trap _cleanup EXIT

# write_topology FILE: echo x2 (depends on kv) and kv x1.
write_topology() {
  cat >"$1" <<'TOPO'
services {
  name: "echo"  binary: "services/echo/echo_server"  replicas: 2
  args: "--port={port}"  args: "--register={register}"
  depends_on: "kv"
  stop_grace: "5s"
}
services {
  name: "kv"  binary: "services/kv/kv_server"
  args: "--port={port}"
}
TOPO
}

# start_launcher TOPOLOGY [FLAGS...]: starts it (stdout through a pipe),
# waits up to 30 s for "control listening on" and sets $control.
start_launcher() {
  local topology=$1
  shift
  : >"$launcher_out"
  : >"$launcher_err"
  "$launch" "$topology" --bin_dir="$runfiles" --state_dir="$state_dir" \
    --control=127.0.0.1:0 "$@" > >(cat >"$launcher_out") \
    2> >(cat >"$launcher_err") &
  launcher_pid=$!
  control=""
  for _ in $(seq 1 300); do
    control=$(sed -n 's/^control listening on //p' "$launcher_out")
    [ -n "$control" ] && return 0
    kill -0 "$launcher_pid" 2>/dev/null || fail "the launcher exited early"
    sleep 0.1
  done
  fail "no 'control listening on' line within 30 s"
}

# wait_ready: waits up to 60 s for the line starting "ready".
wait_ready() {
  for _ in $(seq 1 600); do
    if grep -q '^ready' "$launcher_out"; then
      remember_pids
      return 0
    fi
    kill -0 "$launcher_pid" 2>/dev/null || fail "the launcher exited before ready"
    sleep 0.1
  done
  fail "no 'ready' line within 60 s"
}

status_json() {
  "$cli" call "$control" bevrpc.launch.Launcher/Status '{}'
}

# check_status PYTHON_EXPR: reads Status JSON on stdin; true if EXPR holds,
# with S = services, P = processes (each with every field defaulted).
check_status() {
  python3 -c '
import json, sys
r = json.load(sys.stdin)
S = r.get("services", [])
P = [dict({"replica": 0, "pid": 0, "restarts": 0, "last_exit": "",
           "state": "STATE_UNSPECIFIED"}, **p) for p in r.get("processes", [])]
sys.exit(0 if eval("(" + sys.argv[1].strip() + ")") else 1)
' "$1"
}

# status_value PYTHON_EXPR: prints EXPR over the Status (as check_status).
status_value() {
  status_json | python3 -c '
import json, sys
r = json.load(sys.stdin)
S = r.get("services", [])
P = [dict({"replica": 0, "pid": 0, "restarts": 0, "last_exit": ""}, **p)
     for p in r.get("processes", [])]
print(eval("(" + sys.argv[1].strip() + ")"))
' "$1"
}

# wait_status PYTHON_EXPR [SECONDS]: polls Status until EXPR holds.
wait_status() {
  local limit=${2:-30}
  for _ in $(seq 1 $((limit * 10))); do
    status_json 2>/dev/null | check_status "$1" && return 0
    sleep 0.1
  done
  echo "last Status: $(status_json 2>&1)"
  fail "Status did not satisfy '$1' within $limit s"
}

# pids: every child pid in Status, space-separated.
pids() { status_value '" ".join(str(p["pid"]) for p in P)'; }

remember_pids() { seen_pids="$seen_pids $(pids)"; }

# none_alive PID...: true if no PID is a live process running one of our
# binaries (zombies count as gone: they are their parent's to reap; a pid
# reused by an unrelated process does not count).
none_alive() {
  local p state
  for p in "$@"; do
    state=$(awk '/^State:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    [ -z "$state" ] || [ "$state" = "Z" ] && continue
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$runfiles" && return 1
  done
  return 0
}

# wait_none_alive SECONDS PID...
wait_none_alive() {
  local limit=$1
  shift
  for _ in $(seq 1 $((limit * 10))); do
    none_alive "$@" && return 0
    sleep 0.1
  done
  fail "processes still alive after $limit s: $*"
}
