#!/usr/bin/env bash
# The multi-process issue's walk-through on the demo application itself:
# services/shortener/topology.textproto (kv x3 sharded with
# ring_hash_strict on kv/0..kv/2, shortener x2) under bevrpc-launch.
#  1. "control listening" and "ready"; Status shows 2 services and 5
#     processes, all RUNNING; Shorten then Lookup through the shortener's
#     target.
#  2. kill -9 of a kv replica: RUNNING again with a new pid and restarts>=1
#     within 5 s, and every code shortened before still looks up (its data
#     came back from the replica's log).
#  3. SIGHUP during a bench of Lookup through the shortener's target: every
#     replica restarted (new pids), the bench reports "errors":0.
#  4. SIGTERM: exit 0 within 15 s, no child left.
# Prints what it measured.
set -euo pipefail
source "${TEST_SRCDIR}/bevrpc/tests/e2e/launch/launch_lib.sh"
topology="$runfiles/services/shortener/topology.textproto"

start_launcher "$topology" --drain_delay=1s
echo "control: $control"
wait_ready

# 1. Everything RUNNING; Shorten and Lookup through the shortener's target.
status_json | check_status '
  sorted(s["name"] for s in S) == ["kv", "shortener"] and
  len(P) == 5 and all(p["state"] == "RUNNING" and p["pid"] > 0 for p in P)' ||
  fail "Status: $(status_json)"
target=$(status_value '[s["target"] for s in S if s["name"] == "shortener"][0]')
echo "shortener target: $target"

declare -A codes
for i in $(seq 1 24); do
  url="https://example.org/page/$i"
  out=$("$cli" call "$target" bevrpc.shortener.Shortener/Shorten "{\"url\":\"$url\"}")
  code=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])' <<<"$out")
  codes[$code]=$url
done
# Any one code (not `printf | head -1`: under pipefail, printf can die of
# SIGPIPE once head has exited, failing the script).
for first in "${!codes[@]}"; do break; done
got=$("$cli" call "$target" bevrpc.shortener.Shortener/Lookup "{\"code\":\"$first\"}")
[ "$got" = "{\"url\":\"${codes[$first]}\"}" ] || fail "Lookup $first: $got"

# lookup_all: every code shortened so far returns its URL.
lookup_all() {
  local c got
  for c in "${!codes[@]}"; do
    got=$("$cli" call "$target" bevrpc.shortener.Shortener/Lookup "{\"code\":\"$c\"}" --timeout 10s) ||
      fail "Lookup $c failed: $got"
    [ "$got" = "{\"url\":\"${codes[$c]}\"}" ] || fail "Lookup $c: $got, want ${codes[$c]}"
  done
}

# 2. kill -9 of kv/1: back within 5 s, and no acknowledged write lost.
old=$(status_value '[p["pid"] for p in P if p["service"] == "kv" and p["replica"] == 1][0]')
killed_at=$(date +%s.%N)
kill -KILL "$old"
wait_status "[p for p in P if p[\"service\"] == \"kv\" and p[\"replica\"] == 1 and
  p[\"state\"] == \"RUNNING\" and p[\"pid\"] not in (0, $old) and p[\"restarts\"] >= 1]" 5
took=$(python3 -c "import time; print('%.2f' % (time.time() - $killed_at))")
echo "kill -9 kv/1 ($old): Status showed it RUNNING with a new pid after ${took}s"
remember_pids
lookup_all
echo "all ${#codes[@]} codes looked up after the kill"

# 3. SIGHUP during a bench of Lookup through the shortener's target.
before=$(pids)
bench_out="$TEST_TMPDIR/bench.json"
"$cli" bench "$target" bevrpc.shortener.Shortener/Lookup "{\"code\":\"$first\"}" \
  -c 8 -z 15s --timeout 10s --json >"$bench_out" &
bench_pid=$!
sleep 1.5  # Into the measured window (after the 1 s warm-up).
hup_at=$(date +%s.%N)
kill -HUP "$launcher_pid"
for _ in $(seq 1 900); do
  grep -q 'rolling restart done' "$launcher_err" && break
  sleep 0.1
done
grep -q 'rolling restart done' "$launcher_err" ||
  fail "the rolling restart did not finish within 90 s"
rolled=$(python3 -c "import time; print('%.1f' % (time.time() - $hup_at))")
bench_running=yes
kill -0 "$bench_pid" 2>/dev/null || bench_running=no
bench_rc=0
wait "$bench_pid" || bench_rc=$?
cat "$bench_out"; echo
echo "rolling restart of 5 replicas took ${rolled}s; bench still running when it ended: $bench_running"
grep -q '"errors":0,' "$bench_out" || fail "bench errors: $(cat "$bench_out")"
[ "$bench_rc" = 0 ] || fail "bench exit status $bench_rc"
[ "$bench_running" = yes ] || fail "the bench ended before the rolling restart did"
wait_status 'len(P) == 5 and all(p["state"] == "RUNNING" for p in P)' 30
remember_pids
after=$(pids)
echo "pids before SIGHUP: $before; after: $after"
for p in $before; do
  case " $after " in *" $p "*) fail "pid $p survived the rolling restart";; esac
done
lookup_all

# 4. SIGTERM: exit 0 within 15 s, nothing left.
all=$(pids)
term_at=$(date +%s.%N)
kill -TERM "$launcher_pid"
for _ in $(seq 1 150); do
  kill -0 "$launcher_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$launcher_pid" 2>/dev/null && fail "the launcher still runs 15 s after SIGTERM"
rc=0
wait "$launcher_pid" || rc=$?
launcher_pid=""
echo "SIGTERM: the launcher exited $rc after $(python3 -c "import time; print('%.2f' % (time.time() - $term_at))")s"
[ "$rc" = 0 ] || fail "launcher exited $rc after SIGTERM"
wait_none_alive 5 $all $seen_pids
echo PASS
