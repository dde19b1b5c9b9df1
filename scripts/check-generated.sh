#!/usr/bin/env bash
# Cheap CI check that the committed generated Swift code is current, without building the
# protoc plugins: each Generated/ folder holds a stamp (written by scripts/generate-protos.sh)
# with the protoc and plugin versions and the sha256 of every .proto and generated file.
# The check recomputes the stamp and compares. It fails when a .proto changed without
# regenerating, when the pinned versions changed, or when generated code was edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/protos-common.sh

status=0
for dir in Protos/*/; do
    name="$(basename "$dir")"
    out="$(output_dir_for "$name")"
    stamp="$out/$STAMP_NAME"
    if [ ! -f "$stamp" ]; then
        echo "error: $stamp is missing: run scripts/generate-protos.sh" >&2
        status=1
        continue
    fi
    if ! diff -u "$stamp" <(write_stamp "$dir" "$out") > /tmp/check-generated.$$ 2>&1; then
        echo "error: the generated code in $out is not current for $dir:" >&2
        cat /tmp/check-generated.$$ >&2
        echo "run scripts/generate-protos.sh and commit the result" >&2
        status=1
    fi
    rm -f /tmp/check-generated.$$
done
if [ "$status" -eq 0 ]; then
    echo "generated code is current"
fi
exit "$status"
