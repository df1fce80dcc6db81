#!/usr/bin/env bash
# The security issue's first "must show", with real processes: an
# echo_server with TLS, required client certificates and a bearer-token
# file. The CLI with the CA, its certificate and the token gets the
# answer; without the token it exits 80 (UNAUTHENTICATED); without a
# client certificate, and as a plaintext client, it fails with an error
# naming TLS or the certificate; `openssl s_client -alpn bevrpc` with the
# client certificate verifies the server and negotiates ALPN bevrpc.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
source "$runfiles/tests/testing/server.sh"
echo_server="$runfiles/services/echo/echo_server"
bevrpc="$runfiles/tools/bevrpc"
make_certs="$runfiles/tests/testing/make_test_certs"

fail() { echo "FAIL: $*"; exit 1; }

certs="$TEST_TMPDIR/certs"
mkdir -p "$certs"
"$make_certs" "$certs"
token="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'alice %s\n' "$token" >"$TEST_TMPDIR/tokens"

start_server secure "$echo_server" --port=0 \
  --tls_cert="$certs/server.pem" --tls_key="$certs/server.key" \
  --tls_client_ca="$certs/ca.pem" --auth_token_file="$TEST_TMPDIR/tokens"
port=${addr##*:}
target="localhost:$port"
tls=(--tls_ca "$certs/ca.pem" --tls_cert "$certs/client.pem"
     --tls_key "$certs/client.key")

# 1. TLS, client certificate and token: the answer.
out=$("$bevrpc" call "$target" bevrpc.echo.Echo/Echo '{"message":"hi"}' \
  "${tls[@]}" --metadata "authorization=Bearer $token" 2>&1) ||
  fail "the authorized call failed: $out"
[ "$out" = '{"message":"hi"}' ] || fail "answer: $out"
echo "with token: $out"

# 2. Without the token: UNAUTHENTICATED, exit 80.
rc=0
out=$("$bevrpc" call "$target" bevrpc.echo.Echo/Echo '{"message":"hi"}' \
  "${tls[@]}" 2>&1) || rc=$?
[ "$rc" = 80 ] || fail "without a token: exit $rc, want 80: $out"
case "$out" in *UNAUTHENTICATED*bearer*) ;; *) fail "without a token: $out" ;; esac
echo "without token (exit $rc): $out"

# 3. Without a client certificate: refused, naming the certificate.
rc=0
out=$("$bevrpc" call "$target" bevrpc.echo.Echo/Echo '{"message":"hi"}' \
  --tls_ca "$certs/ca.pem" --metadata "authorization=Bearer $token" \
  2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a client without a certificate got through: $out"
case "$out" in *TLS*certificate*|*certificate*TLS*) ;;
  *) fail "without a client certificate, the error does not name TLS and the certificate: $out" ;; esac
echo "without client certificate (exit $rc): $out"

# 4. A plaintext client: refused, naming TLS.
rc=0
out=$("$bevrpc" call "$target" bevrpc.echo.Echo/Echo '{"message":"hi"}' \
  --metadata "authorization=Bearer $token" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a plaintext client got through: $out"
case "$out" in *TLS*) ;; *) fail "plaintext: the error does not name TLS: $out" ;; esac
echo "plaintext client (exit $rc): $out"

# 5. openssl s_client with the client certificate and ALPN bevrpc.
out=$(openssl s_client -connect "127.0.0.1:$port" -servername localhost \
  -alpn bevrpc -CAfile "$certs/ca.pem" -cert "$certs/client.pem" \
  -key "$certs/client.key" -verify_return_error </dev/null 2>&1) || true
echo "$out" | grep -q "Verify return code: 0 (ok)" ||
  fail "s_client did not verify the server: $out"
echo "$out" | grep -q "ALPN protocol: bevrpc" ||
  fail "s_client did not negotiate ALPN bevrpc: $out"
echo "openssl s_client: Verify return code: 0 (ok), ALPN protocol: bevrpc"

# Health stays open without a token (exempt), over TLS.
out=$("$bevrpc" health "$target" "${tls[@]}" 2>&1) || fail "health: $out"
[ "$out" = SERVING ] || fail "health: $out"

stop_server secure
echo PASS
