import AffinityTestSupport
import Foundation

/// Runs `affinity-server` with `arguments` (and an empty environment) until it exits, for settings that must
/// stop it at start; returns its exit status and what it wrote to stderr. A process still running after
/// `timeout` is killed and reported.
func runServerExpectingItToStop(
    _ arguments: [String], in directory: URL, timeout: Duration = .seconds(20)
) async throws -> (status: Int32, stderr: String) {
    let process = Process()
    process.executableURL = try builtExecutable("affinity-server")
    process.arguments = arguments
    process.environment = [:]
    let log = directory.appendingPathComponent("stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    process.standardError = try FileHandle(forWritingTo: log)
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
    }
    let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    guard !process.isRunning else {
        process.terminate()
        process.waitUntilExit()
        throw FixtureError("affinity-server \(arguments) did not stop within \(timeout):\n\(text)")
    }
    return (process.terminationStatus, text)
}
