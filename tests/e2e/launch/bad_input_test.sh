#!/usr/bin/env bash
# Bad topologies and flags exit 2 with a message naming the service and
# field (or the flag) and start nothing; --emit_systemd writes units and
# starts nothing.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
launch="$runfiles/tools/launch/bevrpc-launch"
t="$TEST_TMPDIR/t.textproto"

fail() { echo "FAIL: $*"; exit 1; }

# expect_exit2 WANT TOPOLOGY_TEXT [FLAGS...]
expect_exit2() {
  local want=$1 text=$2
  shift 2
  printf '%s\n' "$text" >"$t"
  local rc=0 err="$TEST_TMPDIR/err"
  "$launch" "$t" --bin_dir="$runfiles" --state_dir="$TEST_TMPDIR/s" "$@" \
    >/dev/null 2>"$err" || rc=$?
  [ "$rc" = 2 ] || fail "exit $rc, want 2, for: $text $*; stderr: $(cat "$err")"
  grep -qF -- "$want" "$err" || fail "no '$want' in: $(cat "$err")"
  [ ! -d "$TEST_TMPDIR/s/logs" ] || fail "started something for: $text"
}

kv='binary: "services/kv/kv_server"'
expect_exit2 'service "kv": binary: "services/kv/nope": no executable file' \
  'services { name: "kv" binary: "services/kv/nope" }'
expect_exit2 'service "kv": name: duplicate service name' \
  "services { name: \"kv\" $kv } services { name: \"kv\" $kv }"
expect_exit2 'service "kv": depends_on: unknown service "db"' \
  "services { name: \"kv\" $kv depends_on: \"db\" }"
expect_exit2 'service "a": depends_on: dependency cycle: a -> b -> a' \
  "services { name: \"a\" $kv depends_on: \"b\" } services { name: \"b\" $kv depends_on: \"a\" }"
expect_exit2 'service "kv": stop_grace: "forever" is not a positive duration' \
  "services { name: \"kv\" $kv stop_grace: \"forever\" }"
expect_exit2 'service "kv": args[1]: "--x={nope}": unknown substitution {nope}' \
  "services { name: \"kv\" $kv args: \"--port={port}\" args: \"--x={nope}\" }"
expect_exit2 't.textproto: line 1 column' 'services { nam: "kv" }'
expect_exit2 'unknown flag --bogus' "services { name: \"kv\" $kv }" --bogus=1
expect_exit2 '--control=x' "services { name: \"kv\" $kv }" --control=x
expect_exit2 'service "kv": port: 0' "services { name: \"kv\" $kv }" \
  --emit_systemd="$TEST_TMPDIR/units0"

# --emit_systemd: units with the expanded command and policies.
printf '%s\n' "services { name: \"kv\" $kv port: 7100 replicas: 2 args: \"--port={port}\" }
services { name: \"echo\" binary: \"services/echo/echo_server\" port: 7200
  args: \"--port={port}\" args: \"--kv={target:kv}\" depends_on: \"kv\"
  restart: ON_FAILURE stop_grace: \"3s\" }" >"$t"
units="$TEST_TMPDIR/units"
"$launch" "$t" --bin_dir="$runfiles" --emit_systemd="$units" >"$TEST_TMPDIR/out" ||
  fail "--emit_systemd failed"
ls "$units"
unit="$units/bevrpc-echo-0.service"
for want in \
  "ExecStart=\"$(cd "$runfiles" && pwd)/services/echo/echo_server\" \"--port=7200\" \"--kv=file://$units/endpoints/kv\"" \
  'Requires=bevrpc-kv-0.service bevrpc-kv-1.service' \
  'After=network.target bevrpc-kv-0.service bevrpc-kv-1.service' \
  'Restart=on-failure' 'RestartSec=100ms' 'KillSignal=SIGTERM' \
  'TimeoutStopSec=3000ms'; do
  grep -qxF -- "$want" "$unit" || fail "no line '$want' in $unit: $(cat "$unit")"
done
grep -qxF 'Restart=always' "$units/bevrpc-kv-1.service" || fail "kv restart"
grep -qxF '127.0.0.1:7101 id=kv/1' "$units/endpoints/kv" || fail "kv list"
[ ! -e "$units/bevrpc-kv-2.service" ] || fail "a third kv unit"
echo PASS
