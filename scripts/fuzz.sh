#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (with AddressSanitizer) and runs each one for a bounded time.
#
#   AFFINITY_FUZZ_SECONDS   seconds of fuzzing per target (default 60)
#   AFFINITY_FUZZ_TARGETS   the targets to run (default: all four)
#
# The fuzz package has its own scratch path (.build-fuzz, git-ignored), so the normal build never
# compiles it. Each target first replays Fuzz/Regressions/<target>/ (inputs of defects found and
# fixed), then fuzzes from the committed seed corpus Fuzz/Corpus/<target>/ plus the inputs it found
# in earlier runs (.build-fuzz/corpus/<target>/). A crash, a leak, an input that runs longer than
# 10 s or a memory blow-up fails the script; the input is kept in .build-fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${AFFINITY_FUZZ_SECONDS:-60}"
targets="${AFFINITY_FUZZ_TARGETS:-FuzzJSONScanner FuzzWebSocketMessages FuzzRESPReader FuzzPeerRequest}"
scratch="$PWD/.build-fuzz"
# (-Xswiftc repeats the sanitizers for every module: seen here, an incremental rebuild otherwise
# lost the coverage counters of the recompiled modules)
build=(swift build --package-path Fuzz --scratch-path "$scratch" -c debug --sanitize=fuzzer --sanitize=address
    -Xswiftc -sanitize=fuzzer,address)

echo "== fuzz: building ${targets}"
"${build[@]}"
bin="$("${build[@]}" --show-bin-path)"

failed=()
for target in $targets; do
    corpus="$scratch/corpus/$target"
    artifacts="$scratch/artifacts/$target"
    log="$scratch/$target.log"
    mkdir -p "$corpus" "$artifacts"
    regressions=(Fuzz/Regressions/"$target"/*)
    if [ -e "${regressions[0]}" ]; then
        echo "== fuzz: $target replays ${#regressions[@]} regression input(s)"
        if ! "$bin/$target" -timeout=10 -rss_limit_mb=2048 "${regressions[@]}" >"$log" 2>&1; then
            tail -n 40 "$log" >&2
            failed+=("$target (regression)")
            continue
        fi
    fi
    echo "== fuzz: $target for ${seconds}s"
    if "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "Fuzz/Corpus/$target" >"$log" 2>&1; then
        # a binary built without coverage counters would only run random bytes: that is no fuzzing
        if ! grep -q 'INITED cov: ' "$log"; then
            echo "fuzz: $target has no coverage instrumentation; remove .build-fuzz and run again" >&2
            failed+=("$target (not instrumented)")
            continue
        fi
        grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log" || true
    else
        tail -n 60 "$log" >&2
        echo "fuzz: $target failed; the input is in $artifacts/" >&2
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz targets with failures: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash, leak or hang"
