#!/usr/bin/env bash
# A real Prometheus (Debian's prometheus, tools/setup.sh) scrapes a fresh
# echo_server's own port after 3 OK calls, and its query API answers
# sum(bevrpc_server_handled_total{code="OK"}) >= 3, with exactly 3 for
# bevrpc.echo.Echo/Echo.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
source "$runfiles/tests/testing/server.sh"
source "$runfiles/tests/e2e/observability/http.sh"

require_program /usr/bin/prometheus prometheus

start_server echo "$runfiles/services/echo/echo_server" --port=0
for i in 1 2 3; do
  got=$("$cli" call "$addr" bevrpc.echo.Echo/Echo "{\"message\":\"m$i\"}")
  [ "$got" = "{\"message\":\"m$i\"}" ] || { echo "call $i: got $got"; exit 1; }
done

dir="$TEST_TMPDIR/prometheus"
mkdir -p "$dir/data"
cat >"$dir/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: bevrpc
    static_configs:
      - targets: ['$addr']
YML
prom_port=$(free_port)
start_background prometheus /usr/bin/prometheus \
  --config.file="$dir/prometheus.yml" \
  --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$prom_port"
prom_pid=$bg_pid

# query EXPR: prints the value of the first sample ("" if none yet).
query() {
  python3 - "$prom_port" "$1" <<'PY'
import json, sys, urllib.parse, urllib.request
url = "http://127.0.0.1:%s/api/v1/query?query=%s" % (
    sys.argv[1], urllib.parse.quote(sys.argv[2]))
try:
    with urllib.request.urlopen(url, timeout=5) as r:
        result = json.load(r)["data"]["result"]
except OSError:
    result = []  # not listening yet
sys.stdout.write(result[0]["value"][1] if result else "")
PY
}

# Generous: Prometheus starts, then scrapes once a second.
want='sum(bevrpc_server_handled_total{code="OK"}) >= 3'
got=""
for _ in $(seq 1 600); do
  got=$(query "$want")
  [ -n "$got" ] && break
  kill -0 "$prom_pid" 2>/dev/null || { echo "prometheus exited:"; cat "$TEST_TMPDIR/prometheus.log"; exit 1; }
  sleep 0.1
done
if [ -z "$got" ]; then
  echo "FAIL: no sample for '$want' within 60 s"
  echo "up: '$(query 'up{job="bevrpc"}')'"
  python3 - "$prom_port" <<'PY' || true
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/targets" % sys.argv[1], timeout=5).read().decode())
PY
  tail -20 "$TEST_TMPDIR/prometheus.log"
  exit 1
fi
echo "$want -> $got"

# Exactly the three Echo calls (the CLI's reflection calls are other methods).
echo_ok=$(query 'sum(bevrpc_server_handled_total{service="bevrpc.echo.Echo",method="Echo",code="OK"})')
[ "$echo_ok" = "3" ] || { echo "FAIL: Echo OK calls: got '$echo_ok', want 3"; exit 1; }
[ "$(query 'up{job="bevrpc"}')" = "1" ] || { echo "FAIL: target not up"; exit 1; }

stop_server echo
echo "prometheus scraped the server's port OK"
