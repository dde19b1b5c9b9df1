#!/usr/bin/env bash
# Builds affinity-bench and affinity-server in release mode and runs the benchmark with the documented
# defaults (docs/BENCHMARKS.md): every phase (the relay of issue #16 and the three replicas on a
# three-master Redis Cluster of issue #15 included), 3 runs, 10 s windows after 2 s warm-up, concurrency 64,
# 10,000 idle connections. Extra arguments are passed on, e.g.
#   scripts/bench.sh --runs 5            # the numbers in docs/BENCHMARKS.md
#   scripts/bench.sh --quick             # a short smoke run (every phase once, redis-cluster included)
#   scripts/bench.sh --phases cluster,redis-cluster --runs 5   # one Redis vs a Redis Cluster, same replicas
#   taskset -c 1 scripts/bench.sh --phases relay --replica-cpu 0   # issue #16's pinned relay numbers
#   scripts/bench.sh --phases cluster --json > cluster.json
# Needs redis-server, redis-cli and openssl on PATH (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

swift build -c release --product affinity-server
swift build -c release --product affinity-bench
bin="$(swift build -c release --show-bin-path)"
exec "$bin/affinity-bench" --bin-dir "$bin" "$@"
