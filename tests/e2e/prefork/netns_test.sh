#!/usr/bin/env bash
# Runs prefork_test's SIGHUP test inside a new network namespace where
# net.ipv4.tcp_migrate_req=1, the setting docs recommend for prefork: there,
# connections queued at a stopping worker move to another one, and the test
# requires that not one fresh connection is reset during the rolling restart.
# Needs root or unprivileged user namespaces (unshare -rn); without either
# it says SKIPPED and passes.
set -euo pipefail
bin="${TEST_SRCDIR}/bevrpc/tests/e2e/prefork/prefork_test"
user=""
if ! unshare -n true 2>/dev/null; then
  if ! unshare -rn true 2>/dev/null; then
    echo "SKIPPED: cannot create a network namespace (unshare -n, -rn)"
    exit 0
  fi
  user="-r"
fi
# shellcheck disable=SC2016
exec unshare $user -n sh -c '
  ip link set lo up &&
  echo 1 > /proc/sys/net/ipv4/tcp_migrate_req &&
  exec "$0" --gtest_filter="PreforkTest.Sighup*"' "$bin"
