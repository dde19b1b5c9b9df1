import Foundation

/// A `redis-server` started by the benchmark on a free loopback port (no persistence), and `INFO commandstats`
/// read from it with `redis-cli`.
public final class RedisServer: BenchRedis {
    /// Its loopback port.
    public let port: Int
    /// The process.
    public let process: ChildProcess
    private let cli: String

    /// Starts `redis-server` in `directory` with `extraArguments` (a cluster node's) and waits until it answers
    /// `PING`.
    public static func start(in directory: URL, extraArguments: [String] = []) async throws -> RedisServer {
        let executable = try ExecutableLocator.onPath("redis-server", package: "redis-server")
        let cli = try ExecutableLocator.onPath("redis-cli", package: "redis-tools")
        let port = try await FreePort.below32768()
        let process = try ChildProcess(
            name: "redis-server", executable: executable,
            arguments: [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", directory.path, "--maxclients", "1000",
            ] + extraArguments,
            logFile: directory.appendingPathComponent("redis-\(port).log"))
        let server = RedisServer(port: port, process: process, cli: cli)
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if (try? await server.command(["PING"]))?.contains("PONG") == true { return server }
            guard process.isRunning else {
                throw BenchError(.processFailed, "redis-server exited at start:\n\(process.logTail)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.kill()
        throw BenchError(.processFailed, "redis-server did not answer PING on port \(port) within 10 s")
    }

    private init(port: Int, process: ChildProcess, cli: String) {
        self.port = port
        self.process = process
        self.cli = cli
    }

    /// The `redis://` URL replicas use.
    public var url: String { "redis://127.0.0.1:\(port)" }

    /// The calls per command so far (`INFO commandstats`).
    public func commandCalls() async throws -> [String: Int] {
        CommandStats.parse(try await command(["INFO", "commandstats"]))
    }

    /// Runs one command with `redis-cli` (off the cooperative pool) and returns its output.
    func command(_ arguments: [String]) async throws -> String {
        let cli = self.cli
        let port = self.port
        return try await Offload.run {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: cli)
            process.arguments = ["-h", "127.0.0.1", "-p", "\(port)"] + arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw BenchError(.processFailed, "redis-cli \(arguments.joined(separator: " ")) failed")
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// The process.
    public var processes: [ChildProcess] { [process] }

    /// Stops the server.
    public func stop() { process.kill() }
}

/// Parsing and differencing of `INFO commandstats`.
public enum CommandStats {
    /// `cmdstat_<name>:calls=<n>,...` lines as `[name: calls]`.
    public static func parse(_ text: String) -> [String: Int] {
        var calls: [String: Int] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            guard rawLine.hasPrefix("cmdstat_"), let colon = rawLine.firstIndex(of: ":") else { continue }
            let name = String(rawLine[rawLine.index(rawLine.startIndex, offsetBy: 8)..<colon])
            for field in rawLine[rawLine.index(after: colon)...].split(separator: ",") where field.hasPrefix("calls=") {
                if let value = Int(field.dropFirst(6)) { calls[name] = value }
            }
        }
        return calls
    }

    /// Commands a client sends itself (scripts, their `WAIT`, connection set-up, a cluster client's `CLUSTER
    /// SHARDS` and `ASKING`). `INFO commandstats` also counts every
    /// `redis.call` a Lua script makes under that command's own name; all other names are counted as such
    /// script-internal calls (the replicas send no other plain command on the hot path; a peer-address
    /// lookup, a plain `HGET` on an address-cache miss, would be counted here too).
    static let topLevelCommands: Set<String> = [
        "evalsha", "evalsha_ro", "eval", "eval_ro", "fcall", "fcall_ro", "ping", "auth", "select", "hello", "quit",
        "wait", "asking",
    ]

    /// Whether `name` (as in `INFO commandstats`, subcommands as `script|load`) is a command the replicas send.
    public static func isTopLevel(_ name: String) -> Bool {
        topLevelCommands.contains(name) || name.hasPrefix("script|") || name.hasPrefix("client|")
            || name.hasPrefix("config|") || name.hasPrefix("cluster|")
    }

    /// The calls of several servers (a cluster's masters) added up per command.
    public static func sum(_ servers: [[String: Int]]) -> [String: Int] {
        servers.reduce(into: [:]) { total, calls in total.merge(calls, uniquingKeysWith: +) }
    }

    /// The calls made between two snapshots, per command, without the benchmark's own `info` calls and the
    /// `replconf` acknowledgements a master gets from its replicas (a Redis Cluster's).
    public static func delta(from before: [String: Int], to after: [String: Int]) -> [String: Int] {
        var result: [String: Int] = [:]
        for (name, count) in after where name != "info" && name != "replconf" {
            let difference = count - (before[name] ?? 0)
            if difference > 0 { result[name] = difference }
        }
        return result
    }
}
