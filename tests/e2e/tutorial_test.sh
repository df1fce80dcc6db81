#!/usr/bin/env bash
# The tutorial's steps 4 to 6 (docs/tutorial.md), run for real: start
# hello_server, call it with the CLI and the C++ client, check the answers
# and exit codes.
set -euo pipefail
runfiles="${TEST_SRCDIR}/bevrpc"
server="$runfiles/services/hello/hello_server"
cli="$runfiles/tools/bevrpc"
source "$runfiles/tests/testing/server.sh"

start_server hello "$server" --port=0

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

stop_server hello
echo "tutorial steps OK"
