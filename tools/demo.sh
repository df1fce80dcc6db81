#!/usr/bin/env bash
# The README's demo commands. Both install what is missing and build first.
#
#   bash tools/demo.sh             starts the echo server on a free port,
#                                  calls it with the CLI, prints the answer,
#                                  and stops the server it started.
#   bash tools/demo.sh --topology  starts the URL shortener's topology with
#                                  the launcher (kv x3 + shortener x2, as
#                                  services/shortener/topology.textproto
#                                  says), shortens a URL through the
#                                  shortener's target, looks it up, prints
#                                  the launcher's status, and stops it all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

case "${1:-}" in
  "") ;;
  --topology) exec bash tools/demo_topology.sh ;;
  *) echo "usage: bash tools/demo.sh [--topology]" >&2; exit 2 ;;
esac

bash tools/setup.sh
bazel build //services/echo:echo_server //tools:bevrpc >&2

out=$(mktemp)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  rm -f "$out"
}
trap cleanup EXIT

bazel-bin/services/echo/echo_server --port=0 >"$out" &
server_pid=$!

addr=""
for _ in $(seq 1 100); do  # up to 10 s
  addr=$(sed -n 's/^listening on //p' "$out")
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "demo: echo_server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "demo: echo_server did not start within 10 s" >&2; exit 1; }
echo "demo: echo_server listening on $addr" >&2
echo "demo: bevrpc call $addr bevrpc.echo.Echo/Echo '{\"message\":\"hi\"}'" >&2

bazel-bin/tools/bevrpc call "$addr" bevrpc.echo.Echo/Echo '{"message":"hi"}'
