#!/usr/bin/env bash
# echo_server's registration flags, driven from the shell with a real etcd
# (tests/testing/etcd.sh): bad flags are clear startup errors; a good
# --register puts the key (with --advertise) and SIGTERM removes it; the
# registration comes back after etcd restarts on the same port.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
source "$runfiles/tests/testing/server.sh"
source "$runfiles/tests/testing/etcd.sh"
echo_server="$runfiles/services/echo/echo_server"

fail() { echo "FAIL: $*"; exit 1; }

# Bad flags: exit status 2 and a message with WANT in it (server.sh).
expect_bad() { expect_bad_flags "$echo_server" "$@"; }
expect_bad "--register=dns:///x:1" --register=dns:///x:1
expect_bad "etcd://HOST:PORT[,HOST:PORT...]/PREFIX" --register=list:///1.2.3.4:5
expect_bad "needs a key PREFIX" --register=etcd://127.0.0.1:2379
expect_bad "--advertise=nope" --register=etcd://127.0.0.1:2379/x --advertise=nope
expect_bad "--register_ttl=" --register=etcd://127.0.0.1:2379/x --register_ttl=0s

etcd_start "$TEST_TMPDIR/etcd"

# Polls etcd (bounded, 20 s) until KEY's value is (or, with "", is not) VALUE.
wait_value() {
  local key=$1 want=$2 got="" _
  for _ in $(seq 1 200); do
    got=$(etcd_get "$key")
    if [ -n "$want" ]; then
      case "$got" in *"$want"*) return 0 ;; esac
    else
      [ -z "$got" ] && return 0
    fi
    sleep 0.1
  done
  fail "key $key: got '$got', want '$want'"
}

start_server echo "$echo_server" --port=0 \
  --register="etcd://$ETCD_ENDPOINT/shell/echo" --register_ttl=2s \
  --advertise=10.1.2.3:4567
wait_value shell/echo/10.1.2.3:4567 '"addr":"10.1.2.3:4567"'

# etcd crashes and comes back on the same port with its data: the lease
# may have expired meanwhile; the registrar re-registers either way.
etcd_stop
etcd_start "$TEST_TMPDIR/etcd"
etcd_post /v3/kv/deleterange "{\"key\":\"$(_b64 shell/echo/10.1.2.3:4567)\"}" >/dev/null
# Deleted by hand: only a lost lease (TTL 2 s) brings it back, proving the
# registrar noticed. Revoking every lease makes that immediate.
for id in $(etcd_post /v3/lease/leases '{}' | python3 -c '
import json, sys
print(" ".join(l["ID"] for l in json.load(sys.stdin).get("leases", [])))'); do
  etcd_post /v3/lease/revoke "{\"ID\":\"$id\"}" >/dev/null
done
wait_value shell/echo/10.1.2.3:4567 '"addr":"10.1.2.3:4567"'
grep -q "lost" "$TEST_TMPDIR/echo.err" || fail "registrar did not report the lost lease"

stop_server echo
wait_value shell/echo/10.1.2.3:4567 ""
echo PASS
