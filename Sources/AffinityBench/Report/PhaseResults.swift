/// Latency percentiles of one measurement, in milliseconds.
public struct LatencySummary: Codable, Sendable, Equatable {
    /// Number of latencies recorded.
    public var count: Int
    /// Median.
    public var p50Ms: Double
    /// 99th percentile.
    public var p99Ms: Double
    /// 99.9th percentile.
    public var p999Ms: Double
    /// Largest value.
    public var maxMs: Double

    /// Creates a summary.
    public init(count: Int, p50Ms: Double, p99Ms: Double, p999Ms: Double, maxMs: Double) {
        self.count = count
        self.p50Ms = p50Ms
        self.p99Ms = p99Ms
        self.p999Ms = p999Ms
        self.maxMs = maxMs
    }
}

/// A closed-loop (saturation) measurement of one replica layout.
public struct ThroughputResult: Codable, Sendable, Equatable {
    /// The layout measured.
    public var layout: ReplicaSet.Layout
    /// Concurrent outcome life cycles.
    public var concurrency: Int
    /// Outcomes completed in the measurement window.
    public var outcomes: Int
    /// Length of the window.
    public var seconds: Double
    /// `outcomes / seconds`.
    public var outcomesPerSecond: Double
    /// Worker send → client receive.
    public var latency: LatencySummary
    /// The same, for the outcomes whose worker sat on the client's replica.
    public var localLatency: LatencySummary?
    /// The same, for the outcomes forwarded to the client's replica (cluster layouts).
    public var forwardedLatency: LatencySummary?
    /// Share of the outcomes delivered to another replica than the client's (forwarded).
    public var forwardedFraction: Double
    /// Commands the replicas sent to Redis in the window (`EVALSHA` and other top-level commands in the
    /// `INFO commandstats` delta; a script counts once), cluster layouts only.
    public var redisCommands: Int?
    /// `redisCommands / outcomes`.
    public var redisCommandsPerOutcome: Double?
    /// Every call in the `INFO commandstats` delta but the benchmark's own `INFO`, including the calls Lua
    /// scripts make (`redis.call`), which Redis counts under their own command names.
    public var redisCallsIncludingScripts: Int?
    /// `redisCallsIncludingScripts / outcomes`.
    public var redisCallsIncludingScriptsPerOutcome: Double?
    /// The Redis calls per command name.
    public var redisCommandBreakdown: [String: Int]?
    /// CPU time of all replicas in the window per outcome, microseconds (user + system, /proc/<pid>/stat).
    public var replicaCPUMicrosecondsPerOutcome: Double?
    /// CPU time of redis-server in the window per outcome, microseconds.
    public var redisCPUMicrosecondsPerOutcome: Double?
    /// CPU time of the load generator (this process) in the window per outcome, microseconds.
    public var benchCPUMicrosecondsPerOutcome: Double?
    /// CPU cores busy in the window, all processes of the measurement together (the machine has `cpus`).
    public var coresBusy: Double?

    /// Creates a result.
    public init(
        layout: ReplicaSet.Layout, concurrency: Int, outcomes: Int, seconds: Double, latency: LatencySummary,
        localLatency: LatencySummary? = nil, forwardedLatency: LatencySummary? = nil,
        forwardedFraction: Double, redisCommands: [String: Int]?,
        cpuSeconds: (replicas: Double, redis: Double, bench: Double)? = nil
    ) {
        self.layout = layout
        self.concurrency = concurrency
        self.outcomes = outcomes
        self.seconds = seconds
        self.outcomesPerSecond = seconds > 0 ? Double(outcomes) / seconds : 0
        self.latency = latency
        self.localLatency = localLatency
        self.forwardedLatency = forwardedLatency
        self.forwardedFraction = forwardedFraction
        self.redisCommandBreakdown = redisCommands
        if let cpuSeconds, outcomes > 0, seconds > 0 {
            replicaCPUMicrosecondsPerOutcome = cpuSeconds.replicas * 1e6 / Double(outcomes)
            redisCPUMicrosecondsPerOutcome = cpuSeconds.redis * 1e6 / Double(outcomes)
            benchCPUMicrosecondsPerOutcome = cpuSeconds.bench * 1e6 / Double(outcomes)
            coresBusy = (cpuSeconds.replicas + cpuSeconds.redis + cpuSeconds.bench) / seconds
        }
        if let redisCommands {
            let total = redisCommands.values.reduce(0, +)
            let sent = redisCommands.filter { CommandStats.isTopLevel($0.key) }.values.reduce(0, +)
            self.redisCommands = sent
            self.redisCommandsPerOutcome = outcomes > 0 ? Double(sent) / Double(outcomes) : nil
            self.redisCallsIncludingScripts = total
            self.redisCallsIncludingScriptsPerOutcome = outcomes > 0 ? Double(total) / Double(outcomes) : nil
        }
    }
}

/// An open-loop measurement: outcomes started at a fixed rate, independent of completions.
public struct OpenLoopResult: Codable, Sendable, Equatable {
    /// The layout measured.
    public var layout: ReplicaSet.Layout
    /// Arrivals per second asked for (half of the closed-loop peak of the same run).
    public var targetRate: Double
    /// Outcomes completed per second in the window.
    public var achievedRate: Double
    /// Outcomes completed in the window.
    public var outcomes: Int
    /// Arrivals not started because too many outcomes were in flight (the servers fell behind the rate).
    public var skippedArrivals: Int
    /// Worker send → client receive.
    public var latency: LatencySummary
    /// The same, for the outcomes whose worker sat on the client's replica.
    public var localLatency: LatencySummary?
    /// The same, for the outcomes forwarded to the client's replica (cluster layouts).
    public var forwardedLatency: LatencySummary?
    /// CPU time of all replicas from the window's first arrival until its last outcome was answered, per
    /// outcome of the window, microseconds.
    public var replicaCPUMicrosecondsPerOutcome: Double?
    /// The same for the load generator (this process).
    public var benchCPUMicrosecondsPerOutcome: Double?

    /// Creates a result.
    public init(
        layout: ReplicaSet.Layout, targetRate: Double, achievedRate: Double, outcomes: Int, skippedArrivals: Int = 0,
        latency: LatencySummary, localLatency: LatencySummary? = nil, forwardedLatency: LatencySummary? = nil,
        cpuSeconds: (replicas: Double, redis: Double, bench: Double)? = nil
    ) {
        self.layout = layout
        self.targetRate = targetRate
        self.achievedRate = achievedRate
        self.outcomes = outcomes
        self.skippedArrivals = skippedArrivals
        self.latency = latency
        self.localLatency = localLatency
        self.forwardedLatency = forwardedLatency
        if let cpuSeconds, outcomes > 0 {
            replicaCPUMicrosecondsPerOutcome = cpuSeconds.replicas * 1e6 / Double(outcomes)
            benchCPUMicrosecondsPerOutcome = cpuSeconds.bench * 1e6 / Double(outcomes)
        }
    }
}

/// Server memory per idle connection.
public struct IdleResult: Codable, Sendable, Equatable {
    /// Idle client connections opened (hello done, one subscription each).
    public var connections: Int
    /// The replica's VmRSS before opening them, KiB.
    public var rssBeforeKiB: Int
    /// The replica's VmRSS with all of them open, KiB.
    public var rssAfterKiB: Int
    /// `(after - before) / connections`, KiB.
    public var perConnectionKiB: Double

    /// Creates a result from the two readings.
    public init(connections: Int, rssBeforeKiB: Int, rssAfterKiB: Int) {
        self.connections = connections
        self.rssBeforeKiB = rssBeforeKiB
        self.rssAfterKiB = rssAfterKiB
        self.perConnectionKiB = connections > 0 ? Double(rssAfterKiB - rssBeforeKiB) / Double(connections) : 0
    }
}

/// Everything one run measured.
public struct RunResult: Codable, Sendable, Equatable {
    /// 1-based run number.
    public var run: Int
    /// Closed-loop results by layout, in the order measured.
    public var throughput: [ThroughputResult] = []
    /// Open-loop results at half of the peak, by layout.
    public var halfLoad: [OpenLoopResult] = []
    /// The `relay` phase at saturation (pre-subscribed keys), by layout: `memory` (the embedded store) and
    /// `single` (Redis).
    public var relay: [ThroughputResult] = []
    /// The `relay` phase at the fixed rate (`--relay-rate`), on the same processes, by layout.
    public var relayFixedRate: [OpenLoopResult] = []
    /// The idle-connection measurement.
    public var idle: IdleResult?
    /// What the load observed about every outcome of this run.
    public var correctness = CorrectnessCounts()

    /// An empty run.
    public init(run: Int) {
        self.run = run
    }

    /// The closed-loop result of `layout`.
    public func throughput(_ layout: ReplicaSet.Layout) -> ThroughputResult? {
        throughput.first { $0.layout == layout }
    }

    /// The open-loop result of `layout`.
    public func halfLoad(_ layout: ReplicaSet.Layout) -> OpenLoopResult? {
        halfLoad.first { $0.layout == layout }
    }

    /// The relay phase's saturated result of `layout`.
    public func relay(_ layout: ReplicaSet.Layout) -> ThroughputResult? {
        relay.first { $0.layout == layout }
    }

    /// The relay phase's fixed-rate result of `layout`.
    public func relayFixedRate(_ layout: ReplicaSet.Layout) -> OpenLoopResult? {
        relayFixedRate.first { $0.layout == layout }
    }

    /// Replica CPU per outcome of the relay at the fixed rate over the same at saturation, in this run (the
    /// issue #16 check that batching does not need saturation: at most 1.5).
    public func relayFixedRateCPURatio(_ layout: ReplicaSet.Layout) -> Double? {
        guard let saturated = relay(layout)?.replicaCPUMicrosecondsPerOutcome, saturated > 0,
            let fixed = relayFixedRate(layout)?.replicaCPUMicrosecondsPerOutcome
        else { return nil }
        return fixed / saturated
    }

    /// Three replicas' throughput on a Redis Cluster over the same on one Redis, measured in this run.
    public var redisClusterToClusterRatio: Double? {
        guard let cluster = throughput(.cluster), let redisCluster = throughput(.redisCluster),
            cluster.outcomesPerSecond > 0
        else { return nil }
        return redisCluster.outcomesPerSecond / cluster.outcomesPerSecond
    }

    /// Three replicas' throughput over one replica's (cluster mode with Redis), measured in this run.
    public var clusterToSingleRatio: Double? {
        guard let single = throughput(.single), let cluster = throughput(.cluster), single.outcomesPerSecond > 0
        else { return nil }
        return cluster.outcomesPerSecond / single.outcomesPerSecond
    }
}
