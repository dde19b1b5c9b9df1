import AffinityTestSupport
import Foundation
import Testing

/// The executables reject bad configuration with exit status 2 and one line naming the problem.
@Suite("affinity-worker and affinity-demo configuration")
struct ExecutableConfigurationTests {
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:]
    ) throws -> (
        Int32, String
    ) {
        let process = Process()
        process.executableURL = builtProductsDirectory().appendingPathComponent(executable)
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    @Test(arguments: ["affinity-worker", "affinity-demo"])
    func missingAffinityURLIsReported(_ executable: String) throws {
        let (status, output) = try Self.run(executable, [])
        #expect(status == 2)
        #expect(output == "\(executable): --affinity-url or AFFINITY_URL is required\n")
    }

    @Test func invalidWorkerSettingsAreNamed() throws {
        let url = ["--affinity-url", "ws://127.0.0.1:1/v1/ws"]
        let port = try Self.run("affinity-worker", url + ["--port", "70000"])
        #expect(port.0 == 2)
        #expect(port.1.contains("--port must be an integer in 0...65535"), "\(port.1)")
        let backoff = try Self.run("affinity-worker", url, environment: ["AFFINITY_FAILURE_BACKOFF": "soon"])
        #expect(backoff.0 == 2)
        #expect(backoff.1.contains("AFFINITY_FAILURE_BACKOFF must be a positive duration"), "\(backoff.1)")
        let inverted = try Self.run(
            "affinity-worker", url + ["--failure-backoff", "10s", "--failure-backoff-max", "1s"])
        #expect(inverted.0 == 2)
        #expect(inverted.1.contains("back-off maximum must not be below its initial value"), "\(inverted.1)")
        let lock = try Self.run("affinity-worker", url + ["--job-timeout", "10s", "--delivery-timeout", "15s"])
        #expect(lock.0 == 2)
        #expect(lock.1.contains("job timeout (10.0 seconds) must be longer than the delivery timeout"), "\(lock.1)")
        let stream = try Self.run("affinity-worker", url, environment: ["AFFINITY_STREAM_JOBS": "maybe"])
        #expect(stream.0 == 2)
        #expect(stream.1.contains("AFFINITY_STREAM_JOBS must be true or false"), "\(stream.1)")
        let token = try Self.run("affinity-worker", url + ["--token-file", "/nonexistent/worker-token"])
        #expect(token.0 == 2)
        #expect(token.1.contains("--token-file: cannot read /nonexistent/worker-token"), "\(token.1)")
    }

    @Test func environmentSuppliesTheReplicaURLs() throws {
        // With AFFINITY_URL set, the demo gets past the URL check and fails on the next bad value.
        let (status, output) = try Self.run(
            "affinity-demo", ["--timeout", "0"], environment: ["AFFINITY_URL": "ws://127.0.0.1:1/v1/ws"])
        #expect(status == 2)
        #expect(output.contains("--timeout must be a positive duration"), "\(output)")
    }
}
