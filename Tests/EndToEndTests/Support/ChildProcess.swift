import AffinityTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

struct EndToEndFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One running executable (affinity-server, affinity-worker, affinity-demo, zeebe-test-gateway) with its
/// stderr and stdout in files.
struct ChildProcess: Sendable {
    /// A name for messages, e.g. `replica r1` or `demo 0`.
    let name: String
    let process: Process
    let logFile: URL
    let outputFile: URL
    /// The port it reported (`affinity.port=N` in its log, or `port=N` on stdout for the test gateway).
    let port: Int

    /// What it wrote to stderr so far.
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }
    /// What it wrote to stdout so far.
    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    var isRunning: Bool { process.isRunning }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits for the exit (up to `timeout`); the status, or nil while still running.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Waits until its log holds `text` (fails early if the process exits).
    func waitForLog(_ text: String, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains(text) { return }
            guard isRunning else { throw EndToEndFailure("\(name) exited before logging \"\(text)\":\n\(log)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw EndToEndFailure("\(name) did not log \"\(text)\" within \(timeout):\n\(log)")
    }
}

/// Where a child reports its port.
enum PortReport: Sendable {
    /// In its stderr log, after `marker` (affinity-server, -worker, -demo: `affinity.port=`).
    case log(marker: String)
    /// On a stdout line starting with `prefix` (zeebe-test-gateway: `port=`).
    case outputLine(prefix: String)

    static let affinity = PortReport.log(marker: "affinity.port=")
}

/// Every process a fixture started, with their logs in one temporary folder; ``terminateAll()`` stops
/// the ones still running (SIGTERM, then SIGKILL after 10 s) and removes the folder.
final class ChildProcessSet: Sendable {
    let directory: URL
    private let children = Mutex<[(child: ChildProcess, input: Pipe)]>([])

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Starts the built `executable` and waits (up to 60 s) until it reports its port.
    ///
    /// Its standard input is a pipe this set holds open until ``terminateAll()``, so a child that
    /// stops at end of input (zeebe-test-gateway) dies with the test process.
    func start(
        _ executable: String, _ arguments: [String], name: String? = nil, environment: [String: String] = [:],
        port report: PortReport = .affinity
    ) async throws -> ChildProcess {
        let path = builtProductsDirectory().appendingPathComponent(executable)
        guard FileManager.default.isExecutableFile(atPath: path.path) else {
            throw EndToEndFailure("\(executable) not built at \(path.path); run scripts/test.sh or swift build first")
        }
        let name = name ?? executable
        let stem = "\(name.replacingOccurrences(of: " ", with: "-"))-\(UUID().uuidString.prefix(6))"
        let logFile = directory.appendingPathComponent("\(stem).log")
        let outputFile = directory.appendingPathComponent("\(stem).out")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let process = Process()
        process.executableURL = path
        process.arguments = arguments
        process.environment = environment
        process.standardError = try FileHandle(forWritingTo: logFile)
        process.standardOutput = try FileHandle(forWritingTo: outputFile)
        let input = Pipe()
        process.standardInput = input
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        var port: Int?
        while port == nil {
            port = Self.reportedPort(report, logFile: logFile, outputFile: outputFile)
            if port != nil { break }
            guard process.isRunning, ContinuousClock.now < deadline else {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
                throw EndToEndFailure("\(name) did not report its port:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let child = ChildProcess(
            name: name, process: process, logFile: logFile, outputFile: outputFile, port: port!)
        children.withLock { $0.append((child, input)) }
        return child
    }

    static func reportedPort(_ report: PortReport, logFile: URL, outputFile: URL) -> Int? {
        switch report {
        case .log(let marker):
            let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            guard let range = text.range(of: marker) else { return nil }
            return Int(text[range.upperBound...].prefix(while: { $0.isNumber }))
        case .outputLine(let prefix):
            let text = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
                return Int(line.dropFirst(prefix.count))
            }
            return nil
        }
    }

    /// Closes the standard input of `child` (end of file).
    func closeInput(of child: ChildProcess) {
        let input = children.withLock { $0.first { $0.child.process === child.process }?.input }
        try? input?.fileHandleForWriting.close()
    }

    /// Stops every child still running, in reverse start order (front-ends and workers before the
    /// replicas they are connected to, the gateway last): SIGTERM, then SIGKILL after 10 s. Then closes
    /// their input and removes the log folder.
    func terminateAll() {
        let all = children.withLock { children in
            defer { children.removeAll() }
            return children
        }
        for (child, input) in all.reversed() {
            if child.process.isRunning {
                kill(child.process.processIdentifier, SIGTERM)
                let deadline = Date() + 10
                while child.process.isRunning && Date() < deadline { usleep(10_000) }
                if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
            }
            child.process.waitUntilExit()
            try? input.fileHandleForWriting.close()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` with a fresh ``ChildProcessSet`` and terminates all its processes afterwards, also when
/// `body` throws.
func withChildProcessSet<T>(_ body: (ChildProcessSet) async throws -> T) async throws -> T {
    let set = try ChildProcessSet()
    defer { set.terminateAll() }
    return try await body(set)
}

/// Runs the built `executable` for the duration of `body`, waiting first for its `affinity.port=` log
/// line; stops it afterwards.
func withChildProcess<T>(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:],
    _ body: (ChildProcess) async throws -> T
) async throws -> T {
    try await withChildProcessSet { set in
        try await body(try await set.start(executable, arguments, environment: environment))
    }
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

/// A free loopback port below the kernel's ephemeral range (32768 and up), for ports a process must be
/// told before it starts (peer ports, Redis): no child that binds port 0 can be handed it meanwhile.
func freeFixedPort() throws -> Int {
    for _ in 0..<200 {
        let candidate = Int.random(in: 20_000..<32_000)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw EndToEndFailure("socket() failed") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(candidate).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if bound == 0 { return candidate }
    }
    throw EndToEndFailure("no free loopback port in 20000..<32000")
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
