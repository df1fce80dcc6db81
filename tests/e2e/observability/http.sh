# Shell helpers for the observability end-to-end tests: free ports, HTTP GET
# through python3 (tools/setup.sh), and the external programs they start.
# Source it after tests/testing/server.sh:
#
#   source "$runfiles/tests/e2e/observability/http.sh"
#   require_program /usr/bin/prometheus prometheus
#   port=$(free_port)
#   http_get "http://$addr/status?format=json"   # body on stdout; fails
#                                                 # unless HTTP 200
#   start_background NAME CMD ARGS...             # killed at exit
#
# Every program started with start_background is sent SIGKILL when the
# script exits (after server.sh's servers get SIGTERM), whatever the outcome.

declare -A _bg_pids=()
_stop_background() {
  local p
  for p in "${_bg_pids[@]}"; do
    # The process group: chromium and prometheus start helpers of their own.
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  done
  for p in "${_bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap '_stop_background; _stop_all_servers' EXIT

# require_program PATH PACKAGE: fails the test (does not skip it: CI installs
# the package) unless PATH is executable.
require_program() {
  if [ ! -x "$1" ]; then
    echo "FAIL: $1 not found: install Debian's $2 with 'bash tools/setup.sh'"
    exit 1
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# http_get URL: prints the body; exits non-zero unless HTTP 200 within 10 s.
http_get() {
  python3 - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    sys.stdout.write(r.read().decode())
PY
}

# start_background NAME CMD ARGS...: runs CMD in its own process group with
# output in $TEST_TMPDIR/NAME.log; sets $bg_pid.
start_background() {
  local name=$1
  shift
  setsid "$@" >"${TEST_TMPDIR}/$name.log" 2>&1 &
  bg_pid=$!
  _bg_pids[$name]=$bg_pid
}
