# Shared by scripts/generate-protos.sh and scripts/check-generated.sh (sourced, not run).
#
# To add a proto directory, add its mapping to output_dir_for (and visibility_for if the
# generated types must not be public), then run scripts/generate-protos.sh.

SWIFT_PROTOBUF_VERSION="1.39.0"
GRPC_SWIFT_PROTOBUF_VERSION="2.4.1"
PROTOC_VERSION="3.21"
STAMP_NAME="GENERATED.stamp"

# The target folder the Swift code for Protos/<dir>/ goes to.
output_dir_for() {
    case "$1" in
        zeebe) echo "Sources/ZeebeClient/Generated" ;;
        affinity) echo "Sources/AffinityPeer/Generated" ;;
        *)
            echo "error: Protos/$1/ has no output target; add it to output_dir_for in scripts/protos-common.sh" >&2
            exit 1
            ;;
    esac
}

# Access level of the generated types for Protos/<dir>/.
visibility_for() {
    case "$1" in
        zeebe) echo "Public" ;;
        *) echo "Internal" ;;
    esac
}

plugin_versions() {
    echo "swift-protobuf $SWIFT_PROTOBUF_VERSION"
    echo "grpc-swift-protobuf $GRPC_SWIFT_PROTOBUF_VERSION"
}

require_protoc() {
    if ! command -v protoc > /dev/null; then
        echo "error: protoc not found; install protobuf-compiler (scripts/install-deps.sh)" >&2
        exit 1
    fi
    local found
    found="$(protoc --version | awk '{print $2}')"
    case "$found" in
        "$PROTOC_VERSION"*) ;;
        *)
            echo "error: protoc $found found, $PROTOC_VERSION.x expected (Debian 12's protobuf-compiler)" >&2
            exit 1
            ;;
    esac
}

# The stamp: tool versions, then the sha256 of every .proto and every generated file.
# $1 = Protos/<dir>/, $2 = output folder.
write_stamp() {
    echo "protoc $PROTOC_VERSION"
    plugin_versions
    (cd "$1" && sha256sum -- *.proto | sed 's/^/proto /')
    (cd "$2" && sha256sum -- *.swift | sed 's/^/generated /')
}
