#!/usr/bin/env bash
# `bash tools/demo.sh --topology`: the multi-process demo. Starts
# services/shortener/topology.textproto with bevrpc-launch (three kv
# shards, two shortener replicas), shortens a URL through the shortener's
# target (a file:/// list of its ready replicas), looks the code up again,
# prints the launcher's Status, and stops the launcher (which stops every
# process it started) — also when something fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tools/setup.sh
bazel build //services/shortener:demo >&2

bevrpc=bazel-bin/tools/bevrpc
work=$(mktemp -d)
launch_pid=""
cleanup() {
  if [ -n "$launch_pid" ] && kill -0 "$launch_pid" 2>/dev/null; then
    kill -TERM "$launch_pid"
    wait "$launch_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

log="$work/launch.log"
bazel-bin/tools/launch/bevrpc-launch services/shortener/topology.textproto \
  --control=127.0.0.1:0 --state_dir="$work/state" >"$log" 2>&1 &
launch_pid=$!

for _ in $(seq 1 600); do  # up to 60 s
  grep -q '^ready' "$log" && break
  kill -0 "$launch_pid" 2>/dev/null || { cat "$log" >&2; echo "demo: the launcher exited" >&2; exit 1; }
  sleep 0.1
done
grep -q '^ready' "$log" || { cat "$log" >&2; echo "demo: not ready within 60 s" >&2; exit 1; }
control=$(sed -n 's/^control listening on //p' "$log")
echo "demo: launcher ready, control at $control" >&2

status=$("$bevrpc" call "$control" bevrpc.launch.Launcher/Status '{}')
target=$(python3 -c '
import json, sys
for s in json.load(sys.stdin).get("services", []):
    if s["name"] == "shortener":
        print(s["target"])' <<<"$status")
echo "demo: shortener target $target" >&2

url="https://example.org/bevrpc/multi-process"
echo "demo: bevrpc call $target bevrpc.shortener.Shortener/Shorten '{\"url\":\"$url\"}'" >&2
shortened=$("$bevrpc" call "$target" bevrpc.shortener.Shortener/Shorten "{\"url\":\"$url\"}")
echo "$shortened"
code=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])' <<<"$shortened")
echo "demo: bevrpc call $target bevrpc.shortener.Shortener/Lookup '{\"code\":\"$code\"}'" >&2
"$bevrpc" call "$target" bevrpc.shortener.Shortener/Lookup "{\"code\":\"$code\"}"

echo "demo: the launcher's processes:" >&2
python3 -c '
import json, sys
for p in json.load(sys.stdin).get("processes", []):
    print("  %s/%s pid %s %s %s" % (p["service"], p.get("replica", 0), p.get("pid"),
          p.get("state"), p.get("address", "")))' <<<"$status" >&2
