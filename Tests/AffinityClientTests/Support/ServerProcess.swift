import AffinityTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `affinity-server` process; the test kills or terminates it, the fixture reaps it.
final class ServerProcess: Sendable {
    let replicaID: String
    let port: Int
    private let process: Mutex<Process?>

    private init(replicaID: String, port: Int, process: Process) {
        self.replicaID = replicaID
        self.port = port
        self.process = Mutex(process)
    }

    var url: String { webSocketURL(port: port) }

    /// Starts a replica on `port` (0: a free one) and waits until it listens.
    static func start(replicaID: String, port: Int = 0, extraArguments: [String] = []) async throws -> ServerProcess {
        let process = Process()
        process.executableURL = try builtExecutable("affinity-server")
        process.arguments =
            [
                "--host", "127.0.0.1", "--port", String(port), "--replica-id", replicaID, "--drain-timeout", "3s",
                "--log-level", "info",
            ] + extraArguments
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = LockedText()
        // keep draining stderr (so the server never blocks on a full pipe) and look for the port
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            output.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        var listeningPort: Int?
        let deadline = ContinuousClock.now + .seconds(20)
        while listeningPort == nil, ContinuousClock.now < deadline, process.isRunning {
            listeningPort = output.withLock { text -> Int? in
                guard let range = text.range(of: #"affinity\.port=[0-9]+"#, options: .regularExpression) else {
                    return nil
                }
                return Int(text[range].drop(while: { !$0.isNumber }))
            }
            if listeningPort == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard let listeningPort else {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            let text = output.withLock { $0 }
            throw TestFailure("affinity-server \(replicaID) did not report its port; output:\n\(text)")
        }
        return ServerProcess(replicaID: replicaID, port: listeningPort, process: process)
    }

    /// Sends `signal` (SIGKILL, SIGTERM) to the process.
    func signal(_ signal: Int32) {
        process.withLock { process in
            if let process, process.isRunning { kill(process.processIdentifier, signal) }
        }
    }

    /// Waits until the process exited (at most `timeout`).
    func waitForExit(timeout: Duration = .seconds(15)) async throws {
        try await eventually("\(replicaID) exits", timeout: timeout) {
            self.process.withLock { $0?.isRunning != true }
        }
    }

    /// Kills the process if it still runs and reaps it.
    func stop() {
        process.withLock { process in
            guard let running = process else { return }
            if running.isRunning { kill(running.processIdentifier, SIGKILL) }
            running.waitUntilExit()
            process = nil
        }
    }
}

/// Runs `body` with a started replica process and always kills it afterwards.
func withServerProcess<T: Sendable>(
    replicaID: String, port: Int = 0, _ body: @Sendable (ServerProcess) async throws -> T
) async throws -> T {
    let server = try await ServerProcess.start(replicaID: replicaID, port: port)
    defer { server.stop() }
    return try await body(server)
}

/// A loopback port that was free a moment ago (bound, then released), for a process that must bind it itself.
func unusedPort() throws -> Int {
    let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketFD >= 0 else { throw TestFailure("socket() failed") }
    defer { close(socketFD) }
    return try boundPort(of: socketFD)
}

/// Binds `socketFD` to a free loopback port and returns the port.
private func boundPort(of socketFD: Int32) throws -> Int {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else { throw TestFailure("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
    }
    guard named == 0 else { throw TestFailure("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A loopback port that refuses connections while `body` runs: a socket is bound to it but never listens,
/// so the port stays taken (no other process or test can listen on it meanwhile) and a connect is refused.
func withRefusingPort<T>(_ body: (Int) async throws -> T) async throws -> T {
    let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketFD >= 0 else { throw TestFailure("socket() failed") }
    defer { close(socketFD) }
    return try await body(try boundPort(of: socketFD))
}

/// Text appended from a file handle's callback and read by the test.
final class LockedText: Sendable {
    private let text = Mutex("")

    func withLock<T: Sendable>(_ body: (inout String) -> T) -> T {
        text.withLock { body(&$0) }
    }
}
