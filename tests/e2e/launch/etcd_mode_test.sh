#!/usr/bin/env bash
# bevrpc-launch with `registry: "etcd://..."` and a real etcd
# (tests/testing/etcd.sh): {register} makes each replica register itself
# under PREFIX/SERVICE with its {id}, Status names the etcd:// target, a
# call through that target works, a replica killed with SIGKILL registers
# again once restarted, and SIGTERM leaves no key behind (each replica
# revokes its lease as it stops).
set -euo pipefail
source "${TEST_SRCDIR}/bevrpc/tests/testing/etcd.sh"
source "${TEST_SRCDIR}/bevrpc/tests/e2e/launch/launch_lib.sh"
trap '_cleanup; _etcd_kill' EXIT

etcd_start "$TEST_TMPDIR/etcd"
prefix="launch-test"
topology="$TEST_TMPDIR/topology.textproto"
cat >"$topology" <<TOPO
registry: "etcd://$ETCD_ENDPOINT/$prefix"
services {
  name: "echo"  binary: "services/echo/echo_server"  replicas: 2
  args: "--port={port}"  args: "--id={id}"  args: "--register={register}"
  args: "--register_ttl=2s"
}
TOPO
start_launcher "$topology" --drain_delay=500ms
wait_ready

target=$(status_value '[s["target"] for s in S if s["name"] == "echo"][0]')
[ "$target" = "etcd://$ETCD_ENDPOINT/$prefix/echo" ] || fail "echo target $target"

# key_of REPLICA: the etcd key of echo/REPLICA (PREFIX/echo/HOST:PORT).
key_of() {
  echo "$prefix/echo/$(status_value "[p[\"address\"] for p in P if p[\"replica\"] == $1][0]")"
}
# wait_key KEY WANT: polls (up to 20 s) until KEY's value contains WANT, or,
# with WANT "", until KEY is gone.
wait_key() {
  local got="" _
  for _ in $(seq 1 200); do
    got=$(etcd_get "$1")
    if [ -n "$2" ]; then
      case "$got" in *"$2"*) return 0 ;; esac
    else
      [ -z "$got" ] && return 0
    fi
    sleep 0.1
  done
  fail "etcd key $1: got '$got', want '${2:-(none)}'"
}
# lease_of KEY: the lease KEY is attached to ("" if absent).
lease_of() {
  etcd_post /v3/kv/range "{\"key\":\"$(printf %s "$1" | base64 -w0)\"}" |
    python3 -c 'import json,sys; k=json.load(sys.stdin).get("kvs",[]); print(k[0].get("lease","") if k else "")'
}
key0=$(key_of 0)
key1=$(key_of 1)
wait_key "$key0" '"id":"echo/0"'
wait_key "$key1" '"id":"echo/1"'
echo "registered: $key0 = $(etcd_get "$key0")"

got=$("$cli" call "$target" bevrpc.echo.Echo/Echo '{"message":"via etcd"}')
[ "$got" = '{"message":"via etcd"}' ] || fail "call through $target: $got"

# SIGKILL of echo/1: restarted on the same port, registered again under a
# new lease (the old one expires after its TTL).
old=$(status_value '[p["pid"] for p in P if p["replica"] == 1][0]')
old_lease=$(lease_of "$key1")
[ -n "$old_lease" ] || fail "$key1 has no lease"
kill -KILL "$old"
wait_status "[p for p in P if p[\"replica\"] == 1 and p[\"state\"] == \"RUNNING\" and
  p[\"pid\"] not in (0, $old) and p[\"restarts\"] >= 1]" 30
remember_pids
[ "$(key_of 1)" = "$key1" ] || fail "echo/1 moved to $(key_of 1)"
for _ in $(seq 1 200); do  # The restarted replica's put: a new lease.
  lease=$(lease_of "$key1")
  [ -n "$lease" ] && [ "$lease" != "$old_lease" ] && break
  sleep 0.1
done
[ -n "$lease" ] && [ "$lease" != "$old_lease" ] ||
  fail "$key1 not registered again (lease '$lease', was $old_lease)"
wait_key "$key1" '"id":"echo/1"'
got=$("$cli" call "$target" bevrpc.echo.Echo/Echo '{"message":"again"}')
[ "$got" = '{"message":"again"}' ] || fail "call after the restart: $got"

# SIGTERM: exit 0; every replica revoked its key.
all=$(pids)
kill -TERM "$launcher_pid"
rc=0
wait "$launcher_pid" || rc=$?
launcher_pid=""
[ "$rc" = 0 ] || fail "launcher exited $rc after SIGTERM"
wait_none_alive 5 $all $seen_pids
wait_key "$key0" ""
wait_key "$key1" ""
echo PASS
