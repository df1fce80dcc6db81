#!/usr/bin/env bash
# The tutorial's steps 4 to 6 (docs/tutorial.md), run for real: start
# hello_server, call it with the CLI and the C++ client, check the answers
# and exit codes.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
server="$runfiles/services/hello/hello_server"
cli="$runfiles/tools/bevrpc"
out="${TEST_TMPDIR}/server.out"

"$server" --port=0 >"$out" 2>"${TEST_TMPDIR}/server.err" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 1 100); do
  addr=$(sed -n 's/^listening on //p' "$out")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "hello_server did not start"; exit 1; }

got=$("$cli" list "$addr" tutorial.hello.Greeter)
want='tutorial.hello.Greeter/SayHello(tutorial.hello.HelloRequest) returns (tutorial.hello.HelloReply)'
[ "$got" = "$want" ] || { echo "list: got '$got', want '$want'"; exit 1; }

got=$("$cli" call "$addr" tutorial.hello.Greeter/SayHello '{"name":"Ada"}')
[ "$got" = '{"greeting":"Hello, Ada!"}' ] || { echo "call: got '$got'"; exit 1; }

set +e
err=$("$cli" call "$addr" tutorial.hello.Greeter/SayHello '{}' 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -eq 67 ] || { echo "empty name: exit $rc, want 67"; exit 1; }
[ "$err" = "INVALID_ARGUMENT: name is empty" ] || { echo "empty name: '$err'"; exit 1; }

got=$("$runfiles/services/hello/hello_client" "$addr")
[ "$got" = 'Hello, Ada!' ] || { echo "client: got '$got'"; exit 1; }

kill -TERM $pid
wait $pid
trap - EXIT
echo "tutorial steps OK"
