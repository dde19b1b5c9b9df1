import Foundation

/// What the benchmark runs: phases, durations, load shape and where the executables are.
public struct BenchConfiguration: Sendable, Equatable {
    /// The phases, in the fixed order `memory, single, cluster, redis-cluster, half-load, relay, idle`
    /// (half-load runs right after the closed loop of each layout it measures).
    public var phases: [BenchPhase] = BenchPhase.allCases
    /// Independent runs (fresh processes each); the report gives the median of each number.
    public var runs = 3
    /// Warm-up before each measurement window (not measured).
    public var warmup: Duration = .seconds(2)
    /// Length of each measurement window.
    public var duration: Duration = .seconds(10)
    /// Concurrent outcome life cycles of the closed loop.
    public var concurrency = 64
    /// Client connections per replica.
    public var clientsPerReplica = 4
    /// Worker connections per replica.
    public var workersPerReplica = 2
    /// Size of each outcome's variables object in bytes (approximately; at least 80).
    public var payloadBytes = 128
    /// Idle connections of the `idle` phase.
    public var idleConnections = 10_000
    /// The replica of the `idle` phase: `single` (cluster mode with Redis) or `memory` (the embedded store).
    public var idleLayout = ReplicaSet.Layout.single
    /// Directory holding `affinity-server` (nil: `$AFFINITY_BIN_DIR`, else next to the bench executable).
    public var binDirectory: String?
    /// `--event-loop-threads` of every replica (nil: the replica's default, the CPUs available). One by
    /// default: the machine's cores are shared by up to three replicas, Redis and the load generator, like
    /// replicas with a CPU limit of one core each.
    public var replicaEventLoopThreads: Int? = 1
    /// Event loop threads of the load generator (the bench process). One by default: a life cycle's
    /// connections then share one thread and never wake another, so the load costs little CPU.
    public var loadEventLoopThreads = 1
    /// Outcomes per second of the `relay` phase's fixed-rate run (after its closed loop, same processes).
    public var relayRate = 4000.0
    /// The CPU every replica is pinned to (started through `taskset -c`), nil: not pinned. With the
    /// benchmark itself started under `taskset -c <other CPU>`, replica and load never share a core.
    public var replicaCPU: Int?

    /// The defaults (documented in docs/BENCHMARKS.md).
    public init() {}

    /// A short smoke run: every phase, one run, one-second windows, 500 idle connections.
    public static var quick: BenchConfiguration {
        var configuration = BenchConfiguration()
        configuration.runs = 1
        configuration.warmup = .milliseconds(500)
        configuration.duration = .seconds(1)
        configuration.concurrency = 16
        configuration.clientsPerReplica = 2
        configuration.workersPerReplica = 1
        configuration.idleConnections = 500
        return configuration
    }

    /// Parses `--phases`: a comma-separated list of phase names, or `all`.
    public static func parsePhases(_ text: String) throws(BenchError) -> [BenchPhase] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if names == ["all"] { return BenchPhase.allCases }
        var chosen: Set<BenchPhase> = []
        for name in names {
            guard let phase = BenchPhase(rawValue: name) else {
                let valid = BenchPhase.allCases.map(\.rawValue).joined(separator: ", ")
                throw BenchError(.invalidArgument, "unknown phase '\(name)' (valid: \(valid), all)")
            }
            chosen.insert(phase)
        }
        guard !chosen.isEmpty else { throw BenchError(.invalidArgument, "--phases names no phase") }
        return BenchPhase.allCases.filter(chosen.contains)
    }

    /// Checks every value; the error names the option.
    public func validate() throws(BenchError) {
        guard !phases.isEmpty else { throw BenchError(.invalidArgument, "no phase selected") }
        if phases.contains(.halfLoad) && !phases.contains(.single) && !phases.contains(.cluster)
            && !phases.contains(.redisCluster)
        {
            throw BenchError(
                .invalidArgument,
                "half-load needs the peak of 'single', 'cluster' or 'redis-cluster' in the same run; add one of them")
        }
        guard (1...100).contains(runs) else { throw BenchError(.invalidArgument, "--runs must be 1...100") }
        guard duration >= .milliseconds(100), duration <= .seconds(3600) else {
            throw BenchError(.invalidArgument, "--duration must be between 100ms and 1h")
        }
        guard warmup >= .zero, warmup <= .seconds(600) else {
            throw BenchError(.invalidArgument, "--warmup must be between 0 and 10m")
        }
        guard (1...10_000).contains(concurrency) else {
            throw BenchError(.invalidArgument, "--concurrency must be 1...10000")
        }
        guard (1...64).contains(clientsPerReplica), (1...64).contains(workersPerReplica) else {
            throw BenchError(.invalidArgument, "--clients-per-replica and --workers-per-replica must be 1...64")
        }
        guard concurrency <= clientsPerReplica * 1000 else {
            throw BenchError(
                .invalidArgument,
                "--concurrency above 1000 subscriptions per client connection (the server's default limit); "
                    + "raise --clients-per-replica")
        }
        guard (80...1_000_000).contains(payloadBytes) else {
            throw BenchError(.invalidArgument, "--payload-bytes must be 80...1000000")
        }
        guard (1...100_000).contains(idleConnections) else {
            throw BenchError(.invalidArgument, "--idle-connections must be 1...100000")
        }
        guard idleLayout == .memory || idleLayout == .single else {
            throw BenchError(.invalidArgument, "--idle-store must be memory or redis")
        }
        if let threads = replicaEventLoopThreads, !(1...1024).contains(threads) {
            throw BenchError(.invalidArgument, "--replica-event-loop-threads must be 1...1024 or default")
        }
        guard (1...64).contains(loadEventLoopThreads) else {
            throw BenchError(.invalidArgument, "--load-event-loop-threads must be 1...64")
        }
        guard relayRate >= 1, relayRate <= 1_000_000 else {
            throw BenchError(.invalidArgument, "--relay-rate must be 1...1000000")
        }
        if let replicaCPU, !(0...4095).contains(replicaCPU) {
            throw BenchError(.invalidArgument, "--replica-cpu must be 0...4095")
        }
    }

    /// File descriptors the benchmark needs (idle connections plus the load's and the processes' own).
    public var requiredFileDescriptors: Int {
        (phases.contains(.idle) ? idleConnections : 0) + 3 * (clientsPerReplica + workersPerReplica) + 256
    }
}

/// Parses durations: `500ms`, `10s`, `5m`, or plain seconds (`2.5`).
public enum DurationText {
    /// The duration `text` denotes, or an error naming `option`.
    public static func parse(_ text: String, option: String) throws(BenchError) -> Duration {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            if suffix == "s" && number.hasSuffix("m") { continue }
            if let value = Double(number), value >= 0, value.isFinite {
                return .nanoseconds(Int64(value * factor * 1e9))
            }
            throw BenchError(.invalidArgument, "\(option): '\(text)' is not a duration (500ms, 10s, 5m)")
        }
        if let value = Double(trimmed), value >= 0, value.isFinite { return .nanoseconds(Int64(value * 1e9)) }
        throw BenchError(.invalidArgument, "\(option): '\(text)' is not a duration (500ms, 10s, 5m)")
    }
}
