public import Foundation

/// The directory holding the package's built executables: `$AFFINITY_BIN_DIR` (scripts/test.sh sets it to
/// `swift build --show-bin-path`), else `<package root>/.build/debug`.
public func builtProductsDirectory() -> URL {
    if let directory = ProcessInfo.processInfo.environment["AFFINITY_BIN_DIR"], !directory.isEmpty {
        return URL(fileURLWithPath: directory)
    }
    // this file is <package root>/Tests/AffinityTestSupport/BuiltProducts.swift
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug")
}

/// The built executable `name` (`affinity-server`, `affinity-worker`, ...), or an error that says how to
/// build it.
public func builtExecutable(_ name: String) throws -> URL {
    let url = builtProductsDirectory().appendingPathComponent(name)
    guard FileManager.default.isExecutableFile(atPath: url.path) else {
        throw FixtureError("\(name) is not built at \(url.path): run `swift build --product \(name)`")
    }
    return url
}
