// swift-tools-version:6.1
import PackageDescription

/// libFuzzer targets for the parsers that face the network (see README.md). Built only by
/// scripts/fuzz.sh, with `--sanitize=fuzzer --sanitize=address` and its own scratch path, so the
/// normal build never compiles them.
///
/// Each target compiles the project's own parser sources (symbolic links into ../Sources) with the
/// sanitizers, plus the few packages those sources import: the fuzzed code is the shipped code.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "affinity-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")
    ],
    targets: [
        // Sources/AffinityProtocol -> ../../Sources/AffinityProtocol (the whole module, no dependencies)
        .target(name: "AffinityProtocol", swiftSettings: swiftSettings),
        // Sources/CHiredis -> ../../Sources/CHiredis (hiredis from libhiredis-dev)
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        // JSONScanner (scanObject, validate) and the envelope decoders, checked against Foundation's parser.
        .executableTarget(
            name: "FuzzJSONScanner",
            dependencies: ["AffinityProtocol"],
            swiftSettings: swiftSettings
        ),
        // WebSocketFrameReader and MessageAssembler (symbolic links), NIO's frame decoder as the reference.
        .executableTarget(
            name: "FuzzWebSocketMessages",
            dependencies: [
                "AffinityProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // RedisReplyReader over hiredis, with RedisReply and RedisError (symbolic links).
        .executableTarget(
            name: "FuzzRESPReader",
            dependencies: ["CHiredis", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // PeerRequestValidation (symbolic link), checked against ProcessInstanceKey.
        .executableTarget(
            name: "FuzzPeerRequest",
            dependencies: ["AffinityProtocol"],
            swiftSettings: swiftSettings
        ),
    ]
)
