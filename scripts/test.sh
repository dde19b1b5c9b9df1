#!/usr/bin/env bash
# The project's test command (README quick start, and what CI runs).
# Installs the system packages it needs, builds every target and test, then runs the whole suite.
# Integration tests start their own throwaway redis-server / affinity-server processes on loopback
# ports and stop them when they finish; nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

swift build --build-tests "$@"
AFFINITY_BIN_DIR="$(swift build --show-bin-path "$@")"
export AFFINITY_BIN_DIR

# The multi-process cluster tests (three affinity-server processes and a redis-server each) run in a
# second pass, so that their CPU load does not skew the deadlines of the other suites on a small machine.
swift test --skip-build --skip AffinityClusterTests "$@"
swift test --skip-build --filter AffinityClusterTests "$@"
