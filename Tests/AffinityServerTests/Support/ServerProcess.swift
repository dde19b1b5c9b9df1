import AffinityTestSupport
import Foundation
import Testing

/// A running `affinity-server` process with its stderr captured to a file.
struct ServerProcess: Sendable {
    let process: Process
    let logFile: URL
    let port: Int

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Waits for the exit (up to `timeout`); returns the status, or nil if it is still running.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.isRunning ? nil : process.terminationStatus
    }
}

/// Runs the built executable with `arguments` and returns its exit status and stderr lines.
func runServerBinary(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, [String]) {
    try await withTemporaryDirectory { directory in
        let log = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = builtProductsDirectory().appendingPathComponent("affinity-server")
        process.arguments = arguments
        process.environment = environment
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let server = ServerProcess(process: process, logFile: log, port: 0)
        guard let status = await server.waitForExit(timeout: .seconds(20)) else {
            process.terminate()
            throw TestFailure("affinity-server did not exit")
        }
        let lines = server.log.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        return (status, lines)
    }
}

/// Starts the built executable on a free loopback port (with `environment` as its whole
/// environment) for the duration of `body`; kills it afterwards if it is still running.
func withServerProcess<T>(
    _ arguments: [String] = [], environment: [String: String] = [:], _ body: (ServerProcess) async throws -> T
) async throws -> T {
    let executable = builtProductsDirectory().appendingPathComponent("affinity-server")
    guard FileManager.default.isExecutableFile(atPath: executable.path) else {
        throw TestFailure("affinity-server not built at \(executable.path); run scripts/test.sh or swift build first")
    }
    return try await withTemporaryDirectory { directory in
        let log = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--host", "127.0.0.1", "--port", "0", "--replica-id", "process-replica"] + arguments
        process.environment = environment
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(20)
        while port == nil && ContinuousClock.now < deadline && process.isRunning {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            // text logs: affinity.port=1234; JSON logs: "affinity.port":"1234"
            if let range = text.range(of: "affinity.port=") ?? text.range(of: #"affinity.port":""#) {
                port = Int(text[range.upperBound...].prefix(while: { $0.isNumber }))
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        guard let port else {
            throw TestFailure(
                "affinity-server did not report its port: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
        }
        return try await body(ServerProcess(process: process, logFile: log, port: port))
    }
}
