#!/usr/bin/env bash
# docs/embedding.md's example, run for real: a kv server, the embedded
# backend pointed at it; the backend answers echo on its own loop and its
# timer writes heartbeats into kv.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
source "$runfiles/tests/testing/server.sh"

start_server kv "$runfiles/services/kv/kv_server" --port=0
kv_addr=$addr
start_server backend "$runfiles/services/embedded/backend" --kv="$kv_addr" --port=0 --tick_ms=50
backend_addr=$addr

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

stop_server backend   # Fails unless it exits 0 after a clean shutdown.
echo "embedded backend OK"
