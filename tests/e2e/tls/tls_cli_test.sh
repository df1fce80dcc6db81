#!/usr/bin/env bash
# Mutual TLS from the shell: echo_server with --tls_cert --tls_key
# --tls_client_ca answers the CLI with --tls_ca --tls_cert --tls_key; the
# CLI without a client certificate, and as a plaintext client, fails with an
# error naming TLS / the certificate; openssl s_client verifies the server
# and negotiates ALPN bevrpc; SIGHUP reloads the certificate; a TLS client
# on a plaintext server is told the server is not speaking TLS.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
cli="$runfiles/tools/bevrpc"
echo_server="$runfiles/services/echo/echo_server"
source "$runfiles/tests/testing/server.sh"

fail() { echo "FAIL: $*"; exit 1; }
d="$TEST_TMPDIR/certs"
mkdir -p "$d"
"$runfiles/tests/testing/make_test_certs" "$d"

start_server tls "$echo_server" --port=0 --tls_cert="$d/server.pem" \
  --tls_key="$d/server.key" --tls_client_ca="$d/ca.pem"
port=${addr##*:}
req='{"message":"over mtls"}'

# 1. Mutual TLS: the answer.
out=$("$cli" call "localhost:$port" bevrpc.echo.Echo/Echo "$req" \
  --tls_ca "$d/ca.pem" --tls_cert "$d/client.pem" --tls_key "$d/client.key" --timeout 10s)
echo "$out" | grep -q '"message": *"over mtls"' || fail "mTLS call: $out"
# By IP address too (the certificate has IP:127.0.0.1).
"$cli" call "127.0.0.1:$port" bevrpc.echo.Echo/Echo "$req" --tls_ca "$d/ca.pem" \
  --tls_cert "$d/client.pem" --tls_key "$d/client.key" --timeout 10s >/dev/null \
  || fail "mTLS call by IP"

# 2. No client certificate: fails, naming TLS and the certificate.
if err=$("$cli" call "localhost:$port" bevrpc.echo.Echo/Echo "$req" \
  --tls_ca "$d/ca.pem" --timeout 10s 2>&1); then fail "call without client cert succeeded"; fi
echo "$err" | grep -q "TLS" || fail "no-cert error does not name TLS: $err"
echo "$err" | grep -q "client certificate" || fail "no-cert error does not name the certificate: $err"
grep -q "peer did not return a certificate" "$TEST_TMPDIR/tls.err" \
  || fail "server did not log the missing certificate"

# 3. Plaintext client: refused with "server requires TLS".
if err=$("$cli" call "127.0.0.1:$port" bevrpc.echo.Echo/Echo "$req" --timeout 10s 2>&1); then
  fail "plaintext call succeeded"
fi
echo "$err" | grep -q "server requires TLS" || fail "plaintext error: $err"

# 4. openssl s_client: the chain verifies and ALPN is bevrpc.
sc=$(openssl s_client -connect "127.0.0.1:$port" -alpn bevrpc -CAfile "$d/ca.pem" \
  -cert "$d/client.pem" -key "$d/client.key" </dev/null 2>&1 || true)
echo "$sc" | grep -q "Verify return code: 0" || fail "s_client verify: $sc"
echo "$sc" | grep -q "ALPN protocol: bevrpc" || fail "s_client ALPN: $sc"
# A client offering only h2 is refused.
sc=$(openssl s_client -connect "127.0.0.1:$port" -alpn h2 -CAfile "$d/ca.pem" \
  -cert "$d/client.pem" -key "$d/client.key" </dev/null 2>&1 || true)
echo "$sc" | grep -q "no application protocol" || fail "s_client -alpn h2 was not refused: $sc"

# 5. The wrong host name is refused, naming both names.
if err=$("$cli" call "127.0.0.1:$port" bevrpc.echo.Echo/Echo "$req" --tls_ca "$d/ca.pem" \
  --tls_cert "$d/client.pem" --tls_key "$d/client.key" --tls_server_name example.com \
  --timeout 10s 2>&1); then fail "wrong server name accepted"; fi
echo "$err" | grep -q "hostname mismatch (certificate is for localhost, 127.0.0.1, ::1, not example.com)" \
  || fail "mismatch error: $err"

# 6. SIGHUP reloads: the new certificate's subject is served.
cp "$d/server2.pem" "$d/server.pem"
cp "$d/server2.key" "$d/server.key"
kill -HUP "${_server_pids[tls]}"
for _ in $(seq 1 100); do
  grep -q "reloaded TLS certificate" "$TEST_TMPDIR/tls.err" && break
  sleep 0.1
done
grep -q "reloaded TLS certificate" "$TEST_TMPDIR/tls.err" || fail "no reload after SIGHUP"
sc=$(openssl s_client -connect "127.0.0.1:$port" -alpn bevrpc -CAfile "$d/ca.pem" \
  -cert "$d/client.pem" -key "$d/client.key" </dev/null 2>&1 || true)
echo "$sc" | grep -q "O = second" || fail "reloaded certificate not served: $sc"
stop_server tls

# 7. A TLS client on a plaintext server.
start_server plain "$echo_server" --port=0
if err=$("$cli" call "$addr" bevrpc.echo.Echo/Echo "$req" --tls_ca "$d/ca.pem" \
  --timeout 10s 2>&1); then fail "TLS call to a plaintext server succeeded"; fi
echo "$err" | grep -q "server speaks plaintext, not TLS" || fail "TLS-on-plaintext error: $err"
grep -q "TLS handshake on a plaintext port from 127.0.0.1:" "$TEST_TMPDIR/plain.err" \
  || fail "plaintext server did not log the TLS handshake"
stop_server plain
echo PASS
