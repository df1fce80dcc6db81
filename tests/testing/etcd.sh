# Shell helpers for sh_test end-to-end tests that need a real etcd
# (/usr/bin/etcd from Debian's etcd-server). Source it:
#
#   source "${TEST_SRCDIR}/bevrpc/tests/testing/etcd.sh"
#   etcd_start "$TEST_TMPDIR/etcd"   # sets ETCD_PORT, ETCD_ENDPOINT
#   etcd_put KEY VALUE; etcd_get KEY  # prints the value ("" if absent)
#   etcd_stop                         # SIGKILL; the data dir stays
#   etcd_start "$TEST_TMPDIR/etcd"   # again: same ports, same data
#
# etcd is killed when the script exits, whatever the outcome.

_etcd_pid=""
_etcd_kill() {
  if [ -n "$_etcd_pid" ]; then
    kill -KILL "$_etcd_pid" 2>/dev/null || true
    wait "$_etcd_pid" 2>/dev/null || true
    _etcd_pid=""
  fi
}
trap '_etcd_kill; type _stop_all_servers >/dev/null 2>&1 && _stop_all_servers' EXIT

_etcd_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# etcd_post PATH JSON: prints the answer's body; fails unless HTTP 200.
etcd_post() {
  python3 - "$ETCD_PORT" "$1" "$2" <<'PY'
import sys, urllib.request
req = urllib.request.Request("http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2]),
                             data=sys.argv[3].encode(), method="POST")
with urllib.request.urlopen(req, timeout=10) as r:
    sys.stdout.write(r.read().decode())
PY
}

# etcd_start DIR: starts etcd with its data in DIR (ports chosen on the first
# call, reused afterwards) and waits up to 30 s until it answers.
etcd_start() {
  local dir=$1
  mkdir -p "$dir"
  if [ -z "${ETCD_PORT:-}" ]; then
    ETCD_PORT=$(_etcd_free_port)
    ETCD_PEER_PORT=$(_etcd_free_port)
  fi
  ETCD_ENDPOINT="127.0.0.1:$ETCD_PORT"
  local c="http://127.0.0.1:$ETCD_PORT" p="http://127.0.0.1:$ETCD_PEER_PORT"
  /usr/bin/etcd --name default --data-dir "$dir/data" \
    --listen-client-urls "$c" --advertise-client-urls "$c" \
    --listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
    --initial-cluster "default=$p" --log-level warn >>"$dir/etcd.log" 2>&1 &
  _etcd_pid=$!
  local _
  for _ in $(seq 1 300); do
    etcd_post /v3/kv/range '{"key":"cHJvYmU="}' >/dev/null 2>&1 && return 0
    kill -0 "$_etcd_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "etcd did not start:"
  tail -20 "$dir/etcd.log"
  exit 1
}

# etcd_stop: kills etcd (like a crash); its data stays.
etcd_stop() { _etcd_kill; }

_b64() { printf '%s' "$1" | base64 -w0; }

# etcd_put KEY VALUE
etcd_put() {
  etcd_post /v3/kv/put "{\"key\":\"$(_b64 "$1")\",\"value\":\"$(_b64 "$2")\"}" >/dev/null
}

# etcd_get KEY: prints the value, or nothing if the key is absent.
etcd_get() {
  etcd_post /v3/kv/range "{\"key\":\"$(_b64 "$1")\"}" | python3 -c '
import base64, json, sys
kvs = json.load(sys.stdin).get("kvs", [])
sys.stdout.write(base64.b64decode(kvs[0]["value"]).decode() if kvs else "")'
}
