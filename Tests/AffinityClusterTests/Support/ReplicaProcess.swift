import AffinityTestSupport
import Foundation
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One `affinity-server` process in cluster mode, its stderr captured to a file.
final class ReplicaProcess: Sendable {
    /// The replica id.
    let id: String
    /// The peer port it was told to use.
    let peerPort: Int
    let logFile: URL
    private let process: Mutex<Process>
    private let mainPort = Mutex<Int?>(nil)

    init(id: String, peerPort: Int, process: Process, logFile: URL) {
        self.id = id
        self.peerPort = peerPort
        self.process = Mutex(process)
        self.logFile = logFile
    }

    /// What it wrote to stderr so far.
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The WebSocket + HTTP port, once it reported it.
    var port: Int {
        get throws {
            guard let port = mainPort.withLock({ $0 }) else { throw FixtureError("replica \(id) has no port yet") }
            return port
        }
    }

    var isRunning: Bool { process.withLock { $0.isRunning } }

    /// Sends `signal` to the process.
    func signal(_ number: Int32) {
        process.withLock { process in
            if process.isRunning { _ = kill(process.processIdentifier, number) }
        }
    }

    /// SIGKILL, then waits (without blocking a thread) for the exit.
    func kill9() async {
        signal(SIGKILL)
        _ = await waitForExit(timeout: .seconds(10))
    }

    /// SIGKILL and a blocking wait, for clean-up.
    func killNow() {
        process.withLock { process in
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Waits for the exit (up to `timeout`); returns the status, or nil if it still runs.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.withLock { $0.isRunning ? nil : $0.terminationStatus }
    }

    /// Waits until the log holds `text` (fails early if the process exits).
    func waitForLog(_ text: String, occurrences: Int = 1, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.components(separatedBy: text).count - 1 >= occurrences { return }
            guard isRunning else { throw FixtureError("replica \(id) exited before logging \"\(text)\":\n\(log)") }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw FixtureError("replica \(id) did not log \"\(text)\" within \(timeout):\n\(log)")
    }

    /// Waits for the `listening` line and records the port.
    func waitForPort(timeout: Duration = .seconds(30)) async throws {
        try await waitForLog("affinity.port=", timeout: timeout)
        let text = log
        guard let range = text.range(of: "affinity.port="),
            let port = Int(text[range.upperBound...].prefix(while: { $0.isNumber }))
        else { throw FixtureError("replica \(id) logged no usable port") }
        mainPort.withLock { $0 = port }
    }
}

/// A Redis server, a cluster CA and the replicas started against them; every replica is killed afterwards.
final class ClusterEnvironment: Sendable {
    let redis: RedisServerProcess
    let pki: TestPKI
    let authority: TestPKI.Authority
    let directory: URL
    private let replicas = Mutex<[ReplicaProcess]>([])

    /// The `--redis-url` the replicas get.
    let redisURL: String

    /// `redisURL` defaults to `redis://` at `redis`.
    init(
        redis: RedisServerProcess, pki: TestPKI, authority: TestPKI.Authority, directory: URL,
        redisURL: String? = nil
    ) {
        self.redis = redis
        self.pki = pki
        self.authority = authority
        self.directory = directory
        self.redisURL = redisURL ?? "redis://127.0.0.1:\(redis.port)"
    }

    /// Launches a replica without waiting for it. `identity` defaults to a certificate from the cluster CA.
    func launch(
        id: String, identity: TestPKI.Identity? = nil, peerPort fixedPeerPort: Int? = nil,
        arguments extra: [String] = []
    ) async throws -> ReplicaProcess {
        let executable = builtProductsDirectory().appendingPathComponent("affinity-server")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw FixtureError("affinity-server not built at \(executable.path); run scripts/test.sh or swift build")
        }
        let pki = self.pki
        let authority = self.authority
        let certificate: TestPKI.Identity
        if let identity {
            certificate = identity
        } else {
            certificate = try await offloaded { try pki.issue(id, by: authority) }
        }
        let peerPort: Int
        if let fixedPeerPort {
            peerPort = fixedPeerPort
        } else {
            peerPort = try await freeLoopbackPort()
        }
        let log = directory.appendingPathComponent("\(id)-\(UUID().uuidString.prefix(6)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments =
            [
                "--host", "127.0.0.1", "--port", "0", "--replica-id", id, "--redis-url", redisURL,
                "--peer-port", "\(peerPort)", "--peer-advertise-address", "127.0.0.1:\(peerPort)",
                "--peer-tls-cert", certificate.certificatePath, "--peer-tls-key", certificate.keyPath,
                "--peer-tls-ca", authority.certificatePath, "--ack-timeout", "5s", "--log-level", "info",
            ] + extra
        process.environment = [:]
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let replica = ReplicaProcess(id: id, peerPort: peerPort, process: process, logFile: log)
        replicas.withLock { $0.append(replica) }
        return replica
    }

    /// Launches a replica and waits until it listens and is registered in Redis.
    func start(
        id: String, identity: TestPKI.Identity? = nil, peerPort: Int? = nil, arguments: [String] = []
    ) async throws -> ReplicaProcess {
        let replica = try await launch(id: id, identity: identity, peerPort: peerPort, arguments: arguments)
        try await replica.waitForPort()
        try await replica.waitForLog("registered replica")
        return replica
    }

    /// Starts r1, r2 and r3.
    func startThree() async throws -> (ReplicaProcess, ReplicaProcess, ReplicaProcess) {
        (try await start(id: "r1"), try await start(id: "r2"), try await start(id: "r3"))
    }

    func killAll() {
        for replica in replicas.withLock({ $0 }) { replica.killNow() }
    }
}

/// Runs `body` with a fresh CA, a `redis-server` (extra arguments appended) and a folder for logs; kills
/// every replica and the Redis server afterwards.
func withClusterEnvironment<T>(
    redisArguments: [String] = [], _ body: (ClusterEnvironment) async throws -> T
) async throws -> T {
    try await withTestPKI { pki in
        let authority = try await offloaded { try pki.makeAuthority("cluster") }
        let redis = RedisServerProcess(
            port: try await freeLoopbackPort(), directory: pki.directory, extraArguments: redisArguments, tls: false)
        try await redis.start()
        defer { redis.stop() }
        let environment = ClusterEnvironment(redis: redis, pki: pki, authority: authority, directory: pki.directory)
        defer { environment.killAll() }
        return try await body(environment)
    }
}

/// Runs blocking work (openssl, waiting for a process) on a Dispatch thread instead of the test's small
/// cooperative thread pool, which the other suites running in parallel need.
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try work() })
        }
    }
}
