#!/usr/bin/env bash
# The project's test command (README quick start, and what CI runs).
# Installs the system packages it needs, builds every target and test, then runs the suite.
# Integration tests start their own throwaway redis-server / affinity-server / test-gateway
# processes on loopback ports and stop them when they finish; nothing is left running.
#
# Each test module runs on its own (its tests in parallel), one module after the other: many
# tests start servers and processes with deadlines, and running all modules at once on a
# 2-core machine only measures the scheduler. Set AFFINITY_TEST_MODULES="A B" to run some.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

swift build --build-tests "$@"
AFFINITY_BIN_DIR="$(swift build --show-bin-path "$@")"
export AFFINITY_BIN_DIR

modules="${AFFINITY_TEST_MODULES:-$(cd Tests && ls -d *Tests/ | tr -d / | tr '\n' ' ')}"
failed=()
for module in $modules; do
    echo "== $module"
    # A module that hangs fails after 20 minutes instead of eating CI's whole budget.
    timeout --signal=KILL 1200 swift test --skip-build --filter "^$module\." "$@" || failed+=("$module")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "test modules with failures: ${failed[*]}" >&2
    exit 1
fi

