#!/usr/bin/env bash
# The naming issue's "must show", end to end with real processes: three
# echo_servers register in a real etcd; the CLI resolves and load-tests the
# etcd:// target; replicas leave by SIGTERM (lease revoked before the
# drain) and by kill -9 (lease expires after its TTL); a new one joins and
# gets calls. Waits are bounded generously; the times measured are printed.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
source "$runfiles/tests/testing/server.sh"
source "$runfiles/tests/testing/etcd.sh"
echo_server="$runfiles/services/echo/echo_server"
bevrpc="$runfiles/tools/bevrpc"

fail() { echo "FAIL: $*"; exit 1; }
now_ms() { date +%s%3N; }

etcd_start "$TEST_TMPDIR/etcd"
target="etcd://$ETCD_ENDPOINT/bevrpc/services/echo"
register=(--register="$target" --register_ttl=3s)

# wait_count N LIMIT_S: polls `bevrpc resolve` until it lists N endpoints;
# prints the seconds it took (fails after LIMIT_S).
wait_count() {
  local want=$1 limit=$2 start got=-1
  start=$(now_ms)
  while (( $(now_ms) - start < limit * 1000 )); do
    got=$("$bevrpc" resolve "$target" --timeout 5s 2>/dev/null | grep -c . || true)
    if [ "$got" -eq "$want" ]; then
      echo "$(( $(now_ms) - start ))"
      return 0
    fi
    sleep 0.1
  done
  fail "resolve lists $got endpoints after ${limit}s, want $want"
}

t0=$(now_ms)
for i in 1 2 3; do start_server "echo$i" "$echo_server" --port=0 "${register[@]}"; done
ms=$(wait_count 3 60)
echo "3 replicas listed $(( $(now_ms) - t0 )) ms after the first start (resolve: ${ms} ms)"
"$bevrpc" resolve "$target"

# Load over the etcd:// target: no errors, every replica >= 20 %.
bench=$("$bevrpc" bench "$target" bevrpc.echo.Echo/Echo '{"message":"hi"}' \
          -c 12 -z 3s --json)
echo "$bench"
python3 - "$bench" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["errors"] == 0, r
eps = r["endpoints"]
assert len(eps) == 3, eps
total = sum(eps.values())
for addr, n in eps.items():
    share = n / total
    print("  %s %d calls (%.1f %%)" % (addr, n, 100 * share))
    assert share >= 0.20, (addr, share)
PY

# SIGTERM: the lease is revoked before the drain.
kill -TERM "${_server_pids[echo1]}"
t=$(now_ms)
ms=$(wait_count 2 60)
echo "after SIGTERM: 2 listed in ${ms} ms (issue: within 3 s)"
wait "${_server_pids[echo1]}" || fail "echo1 exited non-zero after SIGTERM"
unset '_server_pids[echo1]'

# kill -9: nothing revokes; the 3 s lease expires.
kill -KILL "${_server_pids[echo2]}"
wait "${_server_pids[echo2]}" 2>/dev/null || true
unset '_server_pids[echo2]'
ms=$(wait_count 1 60)
echo "after kill -9: 1 listed in ${ms} ms (issue: within 8 s)"

# A new replica is listed and gets calls.
start_server echo4 "$echo_server" --port=0 "${register[@]}"
new_addr=$addr
ms=$(wait_count 2 60)
echo "new replica $new_addr listed in ${ms} ms (issue: within 5 s)"
bench=$("$bevrpc" bench "$target" bevrpc.echo.Echo/Echo '{}' -c 4 -z 1s \
          --warmup 0s --json)
echo "$bench"
python3 - "$bench" "$new_addr" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["errors"] == 0, r
assert r["endpoints"].get(sys.argv[2], 0) > 0, (sys.argv[2], r["endpoints"])
PY
echo PASS
