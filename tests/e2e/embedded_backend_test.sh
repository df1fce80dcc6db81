#!/usr/bin/env bash
# docs/embedding.md's example, run for real: a kv server, the embedded
# backend pointed at it; the backend answers echo on its own loop and its
# timer writes heartbeats into kv.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME BINARY ARGS...: runs it, waits for "listening on", sets $addr.
start() {
  local name=$1; shift
  local out="${TEST_TMPDIR}/$name.out"
  "$@" >"$out" 2>"${TEST_TMPDIR}/$name.err" &
  pids+=($!)
  addr=""
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/^listening on //p' "$out")
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "$name did not start"; cat "${TEST_TMPDIR}/$name.err"; exit 1
}

start kv "$runfiles/services/kv/kv_server" --port=0
kv_addr=$addr
start backend "$runfiles/services/embedded/backend" --kv="$kv_addr" --port=0 --tick_ms=50
backend_addr=$addr
backend_pid=${pids[1]}

got=$("$cli" call "$backend_addr" bevrpc.echo.Echo/Echo '{"message":"embedded"}')
[ "$got" = '{"message":"embedded"}' ] || { echo "echo: got '$got'"; exit 1; }

beat=""
for _ in $(seq 1 50); do  # up to 5 s
  if beat=$("$cli" call "$kv_addr" bevrpc.kv.KeyValue/Get '{"key":"backend/heartbeat"}' 2>/dev/null); then
    break
  fi
  sleep 0.1
done
echo "heartbeat: $beat"
[[ "$beat" == *'"key":"backend/heartbeat"'* ]] || { echo "no heartbeat in kv"; exit 1; }

kill -TERM "$backend_pid"
wait "$backend_pid"   # Exits 0 after a clean shutdown (set -e checks).
echo "embedded backend OK"
