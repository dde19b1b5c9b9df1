#!/usr/bin/env bash
# Regenerates the Swift code for every Protos/<dir>/*.proto and writes a stamp file next to it.
#
# The protoc plugins (protoc-gen-swift from swift-protobuf, protoc-gen-grpc-swift-2 from
# grpc-swift-protobuf) are built once, on demand, in a scratch package under
# .build-protoc-plugins/ (gitignored), pinned to the versions below. protoc itself comes from
# the system (Debian's protobuf-compiler). The generated code is committed; CI only runs
# scripts/check-generated.sh, which compares the stamp with the .proto files and these pins.
#
# Usage: scripts/generate-protos.sh            regenerate everything
#        scripts/generate-protos.sh --plugins  only build the plugins
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/protos-common.sh

plugin_dir=".build-protoc-plugins"
plugin_bin="$plugin_dir/.build/release"

build_plugins() {
    if [ -x "$plugin_bin/protoc-gen-swift" ] && [ -x "$plugin_bin/protoc-gen-grpc-swift-2" ] \
        && [ "$(cat "$plugin_dir/versions" 2>/dev/null)" = "$(plugin_versions)" ]; then
        return
    fi
    echo "building protoc plugins (swift-protobuf $SWIFT_PROTOBUF_VERSION, grpc-swift-protobuf $GRPC_SWIFT_PROTOBUF_VERSION); this takes a while" >&2
    mkdir -p "$plugin_dir/Sources/placeholder"
    echo "// The scratch package needs one target of its own." > "$plugin_dir/Sources/placeholder/placeholder.swift"
    cat > "$plugin_dir/Package.swift" <<MANIFEST
// swift-tools-version:6.0
// Scratch package that only builds the protoc plugins for scripts/generate-protos.sh.
import PackageDescription

let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "$SWIFT_PROTOBUF_VERSION"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "$GRPC_SWIFT_PROTOBUF_VERSION"),
    ],
    targets: [.target(name: "placeholder", path: "Sources/placeholder")]
)
MANIFEST
    (cd "$plugin_dir" && swift build -c release --product protoc-gen-swift && swift build -c release --product protoc-gen-grpc-swift-2)
    plugin_versions > "$plugin_dir/versions"
}

build_plugins
if [ "${1:-}" = "--plugins" ]; then
    exit 0
fi

require_protoc

for dir in Protos/*/; do
    name="$(basename "$dir")"
    out="$(output_dir_for "$name")"
    visibility="$(visibility_for "$name")"
    mkdir -p "$out"
    rm -f "$out"/*.pb.swift "$out"/*.grpc.swift "$out/$STAMP_NAME"
    protos=("$dir"*.proto)
    protoc \
        --plugin=protoc-gen-swift="$plugin_bin/protoc-gen-swift" \
        --plugin=protoc-gen-grpc-swift="$plugin_bin/protoc-gen-grpc-swift-2" \
        --proto_path="$dir" \
        --swift_out="$out" \
        --swift_opt=Visibility="$visibility" \
        --grpc-swift_out="$out" \
        --grpc-swift_opt=Visibility="$visibility",Client=true,Server=true \
        "${protos[@]}"
    write_stamp "$dir" "$out" > "$out/$STAMP_NAME"
    echo "generated $dir -> $out" >&2
done
