import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A process the benchmark started (a replica or redis-server), its stderr captured to a log file.
public final class ChildProcess: Sendable {
    /// A short name for messages (`r1`, `redis`).
    public let name: String
    /// The log file (stderr, and stdout for servers that log there).
    public let logFile: URL
    private let process: Mutex<Process>

    /// Starts `executable` with `arguments`; output goes to `logFile`.
    public init(name: String, executable: String, arguments: [String], logFile: URL) throws(BenchError) {
        self.name = name
        self.logFile = logFile
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // A clean environment (no AFFINITY_* settings leak in), but allocator tuning (MALLOC_*) passes through.
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        for (name, value) in ProcessInfo.processInfo.environment where name.hasPrefix("MALLOC_") {
            environment[name] = value
        }
        process.environment = environment
        do {
            let handle = try FileHandle(forWritingTo: logFile)
            process.standardError = handle
            process.standardOutput = handle
            try process.run()
        } catch {
            throw BenchError(.processFailed, "cannot start \(name) (\(executable))", cause: ErrorText("\(error)"))
        }
        self.process = Mutex(process)
        Self.started.withLock { $0[process.processIdentifier] = self }
    }

    private static let started = Mutex<[Int32: ChildProcess]>([:])

    /// Kills every child process still running (for an interrupted benchmark: SIGINT, SIGTERM).
    public static func killAllStarted() {
        for child in started.withLock({ Array($0.values) }) { child.kill() }
    }

    /// The process id.
    public var pid: Int32 { process.withLock { $0.processIdentifier } }

    /// Whether it still runs.
    public var isRunning: Bool { process.withLock { $0.isRunning } }

    /// Its exit status once it has exited; nil while it runs.
    public var exitStatus: Int32? { process.withLock { $0.isRunning ? nil : $0.terminationStatus } }

    /// What it logged so far.
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The last lines of the log, for error messages.
    public var logTail: String { log.split(separator: "\n").suffix(15).joined(separator: "\n") }

    /// Waits until the log contains `text`; fails if the process exits first or after `timeout`.
    public func waitForLog(_ text: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let current = log
            if current.contains(text) { return current }
            guard isRunning else {
                throw BenchError(.processFailed, "\(name) exited before logging \"\(text)\":\n\(logTail)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError(.processFailed, "\(name) did not log \"\(text)\" within \(timeout):\n\(logTail)")
    }

    /// SIGKILL and wait for the exit (the benchmark keeps no state in its children).
    public func kill() {
        process.withLock { process in
            guard process.isRunning else { return }
            _ = Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        Self.started.withLock { _ = $0.removeValue(forKey: pid) }
    }
}
