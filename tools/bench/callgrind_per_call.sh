#!/usr/bin/env bash
# Instructions per call of the echo server or client, counted by callgrind:
# repeatable on a noisy machine, where wall-clock numbers are not. Use it
# before and after a change to the hot path.
#
#   bazel build -c opt //services/echo:echo_server //tools/bench:echo_client
#   bash tools/bench/callgrind_per_call.sh server   # or: client
#
# It runs the small scenario (1 connection, 64 in flight, 64-byte payloads)
# for SECONDS (default 4) with the other side native, and prints
# "SIDE calls=N Ir=TOTAL Ir/call=X". Ir/call includes start-up, so compare
# runs of the same length. Traffic stays on 127.0.0.1. SERVER_ARGS and
# CLIENT_ARGS add flags to both runs of the server and the client, e.g.
# metrics off: SERVER_ARGS=--metrics=off CLIENT_ARGS="--metrics off".
set -euo pipefail
side=${1:?usage: callgrind_per_call.sh server|client [SECONDS]}
seconds=${2:-4}
bin=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bazel-out/k8-opt/bin}
server="$bin/services/echo/echo_server"
client="$bin/tools/bench/echo_client"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

: >"$work/srv"  # exists before the background job opens it
cg=(valgrind --tool=callgrind "--callgrind-out-file=$work/cg.out")
read -r -a server_args <<<"${SERVER_ARGS:-}"
read -r -a client_args <<<"${CLIENT_ARGS:-}"
if [ "$side" = server ]; then
  "${cg[@]}" "$server" --port 0 "${server_args[@]}" >"$work/srv" 2>/dev/null &
else
  "$server" --port 0 "${server_args[@]}" >"$work/srv" 2>/dev/null &
fi
server_pid=$!
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/srv")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not start" >&2; exit 1; }

run_client=("$client" --host 127.0.0.1 --port "$port" --connections 1
            --concurrency 64 --payload 64 --duration "$seconds" --warmup 0.5
            "${client_args[@]}")
if [ "$side" = client ]; then run_client=("${cg[@]}" "${run_client[@]}"); fi
line=$("${run_client[@]}" 2>/dev/null | tail -1)
kill -TERM "$server_pid"
wait "$server_pid" || true
calls=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["calls"])' "$line")
ir=$(callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$side calls=$calls Ir=$ir Ir/call=$((ir / calls))"
