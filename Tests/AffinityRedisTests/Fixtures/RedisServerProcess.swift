import AffinityRedis
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

/// A throwaway `redis-server` on a free loopback port, started from PATH; tests fail (never skip) without it.
final class RedisServerProcess: @unchecked Sendable {
    let port: Int
    let directory: URL
    let extraArguments: [String]
    let tls: Bool
    private var process: Process?

    init(port: Int, directory: URL, extraArguments: [String], tls: Bool) {
        self.port = port
        self.directory = directory
        self.extraArguments = extraArguments
        self.tls = tls
    }

    /// Starts (or restarts) the server on the same port and waits until it accepts connections.
    func start() async throws {
        let executable = try Self.findExecutable("redis-server")
        let process = Process()
        process.executableURL = executable
        let portArguments = tls ? ["--port", "0", "--tls-port", String(port)] : ["--port", String(port)]
        process.arguments =
            portArguments + [
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path,
                "--logfile", directory.appendingPathComponent("redis-\(port).log").path,
            ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try await waitUntilListening()
    }

    /// Stops the server with SIGKILL and waits for it to exit. (Children of the test process inherit its
    /// blocked signal mask, so redis-server would never see a SIGTERM; it keeps no data to save anyway.)
    func stop() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// A client configuration for this server.
    func configuration() -> RedisConfiguration {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        configuration.reconnect = .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200))
        return configuration
    }

    private func waitUntilListening() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            {
                try? await channel.close()
                return
            }
            guard process?.isRunning == true else {
                let log =
                    (try? String(contentsOf: directory.appendingPathComponent("redis-\(port).log"), encoding: .utf8))
                    ?? ""
                throw FixtureError("redis-server exited at start; log:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw FixtureError("redis-server did not listen on 127.0.0.1:\(port) within 10 s")
    }

    static func findExecutable(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw FixtureError(
            "\(name) is not on PATH; the Redis integration tests need it (Debian: apt-get install redis-server)")
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A free TCP port on 127.0.0.1 (bound to port 0, then released).
func freeLoopbackPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

/// A fresh temporary directory, removed after `body`.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("affinity-redis-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// Runs `body` with a `redis-server` started for it (extra config arguments appended), then stops it.
func withRedisServer<T>(
    arguments: [String] = [], tls: Bool = false, directory: URL? = nil, _ body: (RedisServerProcess) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { temporary in
        let server = RedisServerProcess(
            port: try await freeLoopbackPort(), directory: directory ?? temporary, extraArguments: arguments, tls: tls)
        try await server.start()
        defer { server.stop() }
        return try await body(server)
    }
}

/// Runs a ``RedisClient`` for `body` (its `run()` in a task group), waiting first for the connection unless
/// `waitForConnection` is false; cancels it afterwards.
func withRedisClient<T: Sendable>(
    _ configuration: RedisConfiguration, waitForConnection: Bool = true,
    _ body: @Sendable (RedisClient) async throws -> T
) async throws -> T {
    let client = RedisClient(configuration: configuration, logger: testLogger("redis-client"))
    let events = client.connectionEvents()
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await client.run() }
        defer { group.cancelAll() }
        if waitForConnection {
            try await waitFor(events, timeout: .seconds(10)) { if case .connected = $0 { true } else { false } }
        }
        return try await body(client)
    }
}

/// Waits for the first event that matches, failing after `timeout`.
@discardableResult
func waitFor(
    _ events: AsyncStream<RedisConnectionEvent>, timeout: Duration,
    _ matches: @escaping @Sendable (RedisConnectionEvent) -> Bool
) async throws -> RedisConnectionEvent {
    try await withThrowingTaskGroup(of: RedisConnectionEvent?.self) { group in
        group.addTask {
            for await event in events where matches(event) { return event }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let event = first else {
            throw FixtureError("no matching Redis connection event within \(timeout)")
        }
        return event
    }
}

func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel =
        ProcessInfo.processInfo.environment["AFFINITY_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
        ?? .critical
    return logger
}
