#!/usr/bin/env bash
# Runs one affinity-server on its embedded in-memory store (no Redis needed), on 127.0.0.1:8080.
# Installs the system packages the build needs first. Extra arguments go to affinity-server,
# e.g. `scripts/run.sh --port 9000 --log-level debug`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

exec swift run -c release affinity-server "$@"
