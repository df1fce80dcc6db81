# Shell helpers for end-to-end tests that start server binaries. Source it:
#
#   source "${TEST_SRCDIR}/bevrpc/tests/testing/server.sh"
#   start_server kv "$runfiles/services/kv/kv_server" --port=0
#   echo "$addr"          # host:port from its "listening on" line
#   stop_server kv        # SIGTERM, and fail unless it exits 0
#
# Every server still running when the script exits is sent SIGTERM.

declare -A _server_pids=()
_stop_all_servers() {
  local p
  for p in "${_server_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
}
trap _stop_all_servers EXIT

# start_server NAME BINARY ARGS...: starts it, waits (up to 10 s) for its
# "listening on" line and sets $addr; fails the test otherwise.
start_server() {
  local name=$1
  shift
  local out="${TEST_TMPDIR}/$name.out"
  # Create the files first: the background job opens them for its
  # redirections only when it gets scheduled, maybe after our first read.
  : >"$out"
  : >"${TEST_TMPDIR}/$name.err"
  "$@" >"$out" 2>"${TEST_TMPDIR}/$name.err" &
  _server_pids[$name]=$!
  addr=""
  local _
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/^listening on //p' "$out")
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "$name did not start:"
  cat "${TEST_TMPDIR}/$name.err"
  exit 1
}

# stop_server NAME: SIGTERM; fails the test unless the server exits 0.
stop_server() {
  local pid=${_server_pids[$1]}
  kill -TERM "$pid"
  wait "$pid" || {
    local rc=$?
    echo "$1 exited with status $rc; its stderr:"
    cat "${TEST_TMPDIR}/$1.err"
    exit 1
  }
  unset "_server_pids[$1]"
}

# expect_bad_flags BINARY WANT ARGS...: BINARY --port=0 ARGS... must exit 2
# (a startup usage error) with WANT in its stderr; fails the test otherwise.
expect_bad_flags() {
  local binary=$1 want=$2
  shift 2
  local rc=0 err="${TEST_TMPDIR}/bad_flags.err"
  "$binary" --port=0 "$@" 2>"$err" >/dev/null || rc=$?
  if [ "$rc" -ne 2 ]; then
    echo "FAIL: $* exited $rc, want 2; stderr: $(cat "$err")"
    exit 1
  fi
  grep -qF -- "$want" "$err" || {
    echo "FAIL: $*: no '$want' in: $(cat "$err")"
    exit 1
  }
}
