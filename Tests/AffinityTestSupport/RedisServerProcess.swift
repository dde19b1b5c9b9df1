public import AffinityRedis
public import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A throwaway `redis-server` on a free loopback port, started from PATH; tests fail (never skip) without it.
public final class RedisServerProcess: @unchecked Sendable {
    /// The loopback port it listens on (kept across restarts).
    public let port: Int
    /// Its working directory (append-only files, log).
    public let directory: URL
    /// Extra `redis-server` arguments.
    public let extraArguments: [String]
    /// Whether the port speaks TLS.
    public let tls: Bool
    /// A configuration file given before the arguments (a sentinel's, which it rewrites), or nil.
    public let configurationFile: String?
    /// Whether it runs as a sentinel (`--sentinel`).
    public let sentinel: Bool
    /// Arguments `redis-cli` needs before the command (for a TLS port: `--tls --cacert <ca>`).
    public var cliArguments: [String] = []
    private var process: Process?

    /// Describes a server; ``start()`` starts it. A sentinel needs its own writable `configurationFile`.
    public init(
        port: Int, directory: URL, extraArguments: [String], tls: Bool, configurationFile: String? = nil,
        sentinel: Bool = false
    ) {
        self.port = port
        self.directory = directory
        self.extraArguments = extraArguments
        self.tls = tls
        self.configurationFile = configurationFile
        self.sentinel = sentinel
    }

    /// Whether the process runs.
    public var isRunning: Bool { process?.isRunning == true }

    /// Starts (or restarts) the server on the same port and waits until it accepts connections;
    /// `additionalArguments` apply to this start only (a restart as a replica: `--replicaof host port`).
    public func start(additionalArguments: [String] = []) async throws {
        let executable = try Self.findExecutable("redis-server")
        let process = Process()
        process.executableURL = executable
        let portArguments = tls ? ["--port", "0", "--tls-port", String(port)] : ["--port", String(port)]
        let logArguments = ["--logfile", directory.appendingPathComponent("redis-\(port).log").path]
        if let configurationFile {
            process.arguments =
                [configurationFile] + (sentinel ? ["--sentinel"] : []) + portArguments + logArguments + extraArguments
        } else {
            process.arguments =
                portArguments + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path]
                + logArguments + extraArguments
        }
        process.arguments? += additionalArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try await waitUntilListening()
    }

    /// Stops the server with SIGKILL and waits for it to exit. (Children of the test process inherit its
    /// blocked signal mask, so redis-server would never see a SIGTERM; it keeps no data to save anyway.)
    public func stop() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...) to the process.
    public func signal(_ number: Int32) {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, number)
    }

    /// Runs `redis-cli` against this server (plain TCP) and returns what it printed, trimmed; for tests that
    /// change Redis behind the replicas' backs (delete a route, read a key).
    public func command(_ arguments: String...) async throws -> String {
        try await command(arguments: arguments)
    }

    /// ``command(_:)`` with the arguments as an array.
    public func command(arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = try Self.findExecutable("redis-cli")
        process.arguments = ["-h", "127.0.0.1", "-p", String(port)] + cliArguments + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
            DispatchQueue.global().async {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: data)
            }
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A client configuration for this server.
    public func configuration() -> RedisConfiguration {
        var configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        configuration.reconnect = .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200))
        return configuration
    }

    private func waitUntilListening() async throws {
        guard let pid = process?.processIdentifier else { throw FixtureError("redis-server was not started") }
        let logFile = directory.appendingPathComponent("redis-\(port).log")
        // a server logs the first once it listens, a sentinel the second
        let readyMarkers = ["Ready to accept connections", "Sentinel ID is"]
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            // Only our process's own line says it listens; a connection alone could reach another server
            // that holds the port while ours failed to bind it.
            let ready = log.split(whereSeparator: \.isNewline).contains { line in
                line.hasPrefix("\(pid):") && readyMarkers.contains { line.contains($0) }
            }
            if ready,
                let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: port).get()
            {
                try? await channel.close()
                return
            }
            guard process?.isRunning == true else {
                throw FixtureError("redis-server exited at start; log:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw FixtureError("redis-server did not listen on 127.0.0.1:\(port) within 10 s")
    }

    public static func findExecutable(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw FixtureError(
            "\(name) is not on PATH; the Redis integration tests need it (Debian: apt-get install redis-server)")
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
    /// Creates the error.
    public init(_ description: String) { self.description = description }
}

/// A free TCP port on 127.0.0.1 for a server that must be told its port before it starts: below the kernel's
/// ephemeral range (32768 and up), so that no socket bound to port 0 (another test's server, a client's
/// local end) is handed it meanwhile, and never handed out twice in this test process (suites run in
/// parallel). A port bound to 0 and released could be taken by another suite's server before ours binds it,
/// and ours would then exit while the other answered in its place.
public func freeLoopbackPort() async throws -> Int {
    for _ in 0..<500 {
        let candidate = Int.random(in: 20_000..<32_000)
        guard handedOutPorts.withLock({ $0.insert(candidate).inserted }) else { continue }
        if let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: candidate).get()
        {
            try await channel.close()
            return candidate
        }
    }
    throw FixtureError("no free loopback port in 20000..<32000")
}

private let handedOutPorts = Mutex<Set<Int>>([])

/// A fresh temporary directory, removed after `body`.
public func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("affinity-redis-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

/// Runs `body` with a `redis-server` started for it (extra config arguments appended), then stops it.
public func withRedisServer<T>(
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
