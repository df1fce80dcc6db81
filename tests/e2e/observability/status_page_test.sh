#!/usr/bin/env bash
# Headless Chromium (Debian's chromium, tools/setup.sh) renders a fresh
# echo_server's /status after calls: the DOM after scripts ran names
# bevrpc.echo.Echo, has its chart canvases, Chart.js drew into them, and the
# page's script marked them drawn. A screenshot goes to the test's
# undeclared outputs (bazel-testlogs/.../test.outputs/status.png).
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
source "$runfiles/tests/testing/server.sh"
source "$runfiles/tests/e2e/observability/http.sh"

require_program /usr/bin/chromium chromium

start_server echo "$runfiles/services/echo/echo_server" --port=0
for i in 1 2 3; do
  "$cli" call "$addr" bevrpc.echo.Echo/Echo "{\"message\":\"m$i\"}" >/dev/null
done

# The page samples once a second: wait (up to 30 s) until a chart point
# shows the Echo calls, so the charts have data to draw.
has_point() {
  http_get "http://$addr/status?format=json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
m = [m for m in d["methods"] if m["service"] == "bevrpc.echo.Echo" and m["method"] == "Echo"]
sys.exit(0 if m and any(m[0]["history"]["qps"]) else 1)'
}
ok=""
for _ in $(seq 1 300); do
  if has_point 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { echo "FAIL: /status charts no Echo calls within 30 s:"; http_get "http://$addr/status?format=json"; exit 1; }

# chromium_run NAME ARGS...: headless Chromium with a fresh profile, in the
# foreground (killed at exit if the test is); fails unless it exits 0
# within 120 s.
chromium_run() {
  local name=$1
  shift
  start_background "$name" /usr/bin/chromium --headless --no-sandbox \
    --disable-gpu --disable-dev-shm-usage --no-first-run \
    --user-data-dir="$TEST_TMPDIR/profile-$name" \
    --virtual-time-budget=5000 --run-all-compositor-stages-before-draw "$@"
  local pid=$bg_pid _
  for _ in $(seq 1 1200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "FAIL: chromium ($name) still running after 120 s"; exit 1
  fi
  wait "$pid" || { echo "FAIL: chromium ($name) exited $?:"; tail -20 "$TEST_TMPDIR/$name.log"; exit 1; }
}

chromium_run dom --dump-dom "http://$addr/status"
dom="$TEST_TMPDIR/dom.log"   # --dump-dom writes the DOM to stdout
check() {  # check WHAT PYTHON-REGEX
  python3 - "$dom" "$2" <<'PY' || { echo "FAIL: $1"; echo "--- DOM:"; head -c 4000 "$dom"; exit 1; }
import re, sys
sys.exit(0 if re.search(sys.argv[2], open(sys.argv[1]).read()) else 1)
PY
}
check "the table names the service" '<td>bevrpc\.echo\.Echo</td><td>Echo</td>'
check "a chart canvas for Echo" '<canvas class="bevrpc-chart" id="bevrpc-chart-\d+-traffic" data-method="bevrpc\.echo\.Echo/Echo"'
# Chart.js sized the canvas itself (its style, after it ran).
check "Chart.js drew into the canvas" 'data-method="bevrpc\.echo\.Echo/Echo" data-kind="latency"[^>]*style="[^"]*box-sizing: border-box'
# The page's own script ran to the end and drew every chart (2 a method).
python3 - "$dom" <<'PY' || { echo "FAIL: the page's script did not draw the charts"; head -c 2000 "$dom"; exit 1; }
import re, sys
m = re.search(r'<body data-rendered="(\d+)"', open(sys.argv[1]).read())
sys.exit(0 if m and int(m.group(1)) >= 2 and int(m.group(1)) % 2 == 0 else 1)
PY
check "the chart section is shown" '<section id="bevrpc-charts">'

shot="${TEST_UNDECLARED_OUTPUTS_DIR:-$TEST_TMPDIR}/status.png"
chromium_run shot --window-size=1280,1000 --screenshot="$shot" "http://$addr/status"
python3 - "$shot" <<'PY' || { echo "FAIL: no PNG screenshot at $shot"; exit 1; }
import sys
data = open(sys.argv[1], "rb").read()
sys.exit(0 if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000 else 1)
PY

stop_server echo
echo "chromium rendered /status OK; screenshot: $shot"
