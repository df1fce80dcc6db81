#!/usr/bin/env bash
# No child outlives the launcher: after SIGKILL of the launcher (no chance
# to clean up), PR_SET_PDEATHSIG ends every replica.
set -euo pipefail
source "${TEST_SRCDIR}/bevrpc/tests/e2e/launch/launch_lib.sh"

topology="$TEST_TMPDIR/topology.textproto"
write_topology "$topology"
start_launcher "$topology"
wait_ready
children=$(pids)
[ "$(echo $children | wc -w)" = 3 ] || fail "pids: $children"
echo "children: $children"
kill -KILL "$launcher_pid"
wait "$launcher_pid" 2>/dev/null || true
launcher_pid=""
wait_none_alive 10 $children
echo PASS
