import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The directory of the built executables: `$AFFINITY_BIN_DIR` (set by scripts/test.sh), else
/// `<package root>/.build/debug`.
func binaryDirectory() -> URL {
    if let directory = ProcessInfo.processInfo.environment["AFFINITY_BIN_DIR"], !directory.isEmpty {
        return URL(fileURLWithPath: directory)
    }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug")
}

struct EndToEndFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One running executable (affinity-server, affinity-worker, affinity-demo) with its stderr in a file.
struct ChildProcess: Sendable {
    let name: String
    let process: Process
    let logFile: URL
    /// The port it reported in its `listening` log line (`affinity.port=N`).
    let port: Int

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    var isRunning: Bool { process.isRunning }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit (up to `timeout`); the status, or nil while still running.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.isRunning ? nil : process.terminationStatus
    }
}

/// Runs the built `executable` for the duration of `body`, waiting first for its `affinity.port=`
/// log line; stops it afterwards (SIGTERM, then SIGKILL after 10 s) and removes its log.
func withChildProcess<T>(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:],
    _ body: (ChildProcess) async throws -> T
) async throws -> T {
    let path = binaryDirectory().appendingPathComponent(executable)
    guard FileManager.default.isExecutableFile(atPath: path.path) else {
        throw EndToEndFailure("\(executable) not built at \(path.path); run scripts/test.sh or swift build first")
    }
    let log = FileManager.default.temporaryDirectory.appendingPathComponent(
        "e2e-\(executable)-\(UUID().uuidString).log")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: log) }
    let process = Process()
    process.executableURL = path
    process.arguments = arguments
    process.environment = environment
    process.standardError = try FileHandle(forWritingTo: log)
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    defer {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date() + 10
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }
    var port: Int?
    let deadline = ContinuousClock.now + .seconds(30)
    while port == nil && ContinuousClock.now < deadline && process.isRunning {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        if let range = text.range(of: "affinity.port=") {
            port = Int(text[range.upperBound...].prefix(while: { $0.isNumber }))
        } else {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
    guard let port else {
        throw EndToEndFailure(
            "\(executable) did not report its port: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }
    return try await body(ChildProcess(name: executable, process: process, logFile: log, port: port))
}

/// Runs several children at once (nested), in order.
func withChildProcesses<T>(
    _ specs: [(executable: String, arguments: [String], environment: [String: String])],
    _ body: ([ChildProcess]) async throws -> T
) async throws -> T {
    func start(_ index: Int, _ started: [ChildProcess]) async throws -> T {
        guard index < specs.count else { return try await body(started) }
        let spec = specs[index]
        return try await withChildProcess(spec.executable, spec.arguments, environment: spec.environment) { child in
            try await start(index + 1, started + [child])
        }
    }
    return try await start(0, [])
}

/// A loopback port nothing listens on (bound, then closed).
func closedLoopbackPort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw EndToEndFailure("socket() failed") }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(socket, pointer, length) == 0 else { return -1 }
            return getsockname(socket, pointer, &length)
        }
    }
    guard bound == 0 else { throw EndToEndFailure("bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls `condition` every 100 ms for at most `timeout`.
func eventually(timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}
