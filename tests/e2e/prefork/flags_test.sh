#!/usr/bin/env bash
# --workers and --id of the shared server main, from the shell: bad values
# exit 2 naming the flag (also a usage error only a worker can find); --id
# is registered as the etcd value's "id"; with --workers=2 --register one
# key stands for the port and survives a SIGHUP rolling restart.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
source "$runfiles/tests/testing/server.sh"
source "$runfiles/tests/testing/etcd.sh"
echo_server="$runfiles/services/echo/echo_server"
bevrpc="$runfiles/tools/bevrpc"

fail() { echo "FAIL: $*"; exit 1; }

expect_bad() { expect_bad_flags "$echo_server" "$@"; }
expect_bad "--workers=0:" --workers=0
expect_bad "--workers=-2:" --workers=-2
expect_bad "--workers=abc:" --workers=abc
expect_bad "--workers=5000:" --workers=5000
expect_bad "--host=localhost" --workers=2 --host=localhost
# Found by the workers at Start(): the master exits 2 as well.
expect_bad "--fault_abort" --workers=2 --fault_abort=no.Such/Method:10:UNAVAILABLE

etcd_start "$TEST_TMPDIR/etcd"

# Polls etcd (bounded, 20 s) until KEY's value contains WANT ("" = absent).
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

# --id without prefork: in the etcd value and in ServerInfo.
start_server one "$echo_server" --port=0 --id=echo/3 \
  --register="etcd://$ETCD_ENDPOINT/ids/echo" --register_ttl=2s
wait_value "ids/echo/$addr" '"id":"echo/3"'
"$bevrpc" call "$addr" bevrpc.server.v1.ServerInfo/Get '{}' | grep -q '"id": *"echo/3"' ||
  fail "ServerInfo does not report --id"
stop_server one

# --workers=2 --register: one key for the port, kept across a SIGHUP.
start_server pre "$echo_server" --port=0 --workers=2 --id=echo/4 \
  --register="etcd://$ETCD_ENDPOINT/ids/echo" --register_ttl=2s
key="ids/echo/$addr"
wait_value "$key" '"id":"echo/4"'
master=${_server_pids[pre]}
old=$(pgrep -P "$master" | sort | tr '\n' ' ')
kill -HUP "$master"
for _ in $(seq 1 200); do
  now=$(pgrep -P "$master" | sort | tr '\n' ' ')
  both_new=1
  for p in $old; do case " $now " in *" $p "*) both_new=0 ;; esac; done
  [ "$both_new" = 1 ] && [ "$(echo $now | wc -w)" = 2 ] && break
  sleep 0.1
done
[ "$both_new" = 1 ] || fail "workers not replaced: before '$old', now '$now'"
# Longer than the TTL: the key is the new worker 0's, kept alive.
sleep 3
wait_value "$key" '"id":"echo/4"'
stop_server pre
wait_value "$key" ""
echo PASS
