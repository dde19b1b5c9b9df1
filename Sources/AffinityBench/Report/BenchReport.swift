/// The benchmark's result: the runs, the medians, the targets and the correctness counts.
public struct BenchReport: Codable, Sendable, Equatable {
    /// How the benchmark was run.
    public struct Setup: Codable, Sendable, Equatable {
        /// Phases run.
        public var phases: [String]
        /// Number of runs.
        public var runs: Int
        /// Warm-up per measurement, seconds.
        public var warmupSeconds: Double
        /// Measurement window, seconds.
        public var durationSeconds: Double
        /// Closed-loop concurrency.
        public var concurrency: Int
        /// Client connections per replica.
        public var clientsPerReplica: Int
        /// Worker connections per replica.
        public var workersPerReplica: Int
        /// Approximate outcome variables size.
        public var payloadBytes: Int
        /// Idle connections.
        public var idleConnections: Int
        /// Online CPUs of the machine.
        public var cpus: Int
        /// The `affinity-server` executable used.
        public var server: String
        /// `redis-server --version`.
        public var redisVersion: String
        /// `--event-loop-threads` given to every replica (nil: the replica's default).
        public var replicaEventLoopThreads: Int?
        /// Event loop threads of the load generator.
        public var loadEventLoopThreads: Int?

        /// Creates a setup.
        public init(
            phases: [String], runs: Int, warmupSeconds: Double, durationSeconds: Double, concurrency: Int,
            clientsPerReplica: Int, workersPerReplica: Int, payloadBytes: Int, idleConnections: Int, cpus: Int,
            server: String, redisVersion: String, replicaEventLoopThreads: Int? = nil, loadEventLoopThreads: Int? = nil
        ) {
            self.phases = phases
            self.runs = runs
            self.warmupSeconds = warmupSeconds
            self.durationSeconds = durationSeconds
            self.concurrency = concurrency
            self.clientsPerReplica = clientsPerReplica
            self.workersPerReplica = workersPerReplica
            self.payloadBytes = payloadBytes
            self.idleConnections = idleConnections
            self.cpus = cpus
            self.server = server
            self.redisVersion = redisVersion
            self.replicaEventLoopThreads = replicaEventLoopThreads
            self.loadEventLoopThreads = loadEventLoopThreads
        }
    }

    /// Format version of this JSON.
    public var formatVersion = 1
    /// How the benchmark was run.
    public var setup: Setup
    /// Every run.
    public var runs: [RunResult]
    /// The medians over the runs.
    public var metrics: [SummaryMetric]
    /// The targets and whether the medians meet them (information: a missed target is not a failure).
    public var targets: [TargetResult]
    /// What the load observed about every outcome of every run.
    public var correctness: CorrectnessCounts
    /// True when every outcome reached exactly its own client and no process failed.
    public var passed: Bool
    /// Why the benchmark failed, if it did.
    public var failure: String?

    /// Builds the report: medians and targets from the runs.
    public init(setup: Setup, runs: [RunResult], failure: String?) {
        let metrics = Self.metrics(of: runs)
        let correctness = runs.reduce(CorrectnessCounts()) { $0 + $1.correctness }
        let failure = failure ?? (correctness.isClean ? nil : "outcome check failed: \(correctness.problems)")
        self.setup = setup
        self.runs = runs
        self.metrics = metrics
        self.targets = Self.targets(from: metrics)
        self.correctness = correctness
        self.failure = failure
        self.passed = failure == nil
    }

    /// The median of the metric `name`.
    public func median(_ name: String) -> Double? {
        metrics.first { $0.name == name }?.median
    }

    /// `<prefix>.<name>_p50`, `_p99` and (with `p999`) `_p999` of one latency per run.
    static func latencyMetrics(
        prefix: String, name: String = "latency", p999: Bool = true, _ summaries: [LatencySummary]
    ) -> [SummaryMetric?] {
        var metrics = [
            SummaryMetric(name: "\(prefix).\(name)_p50", unit: "ms", perRun: summaries.map(\.p50Ms)),
            SummaryMetric(name: "\(prefix).\(name)_p99", unit: "ms", perRun: summaries.map(\.p99Ms)),
        ]
        if p999 {
            metrics.append(SummaryMetric(name: "\(prefix).\(name)_p999", unit: "ms", perRun: summaries.map(\.p999Ms)))
        }
        return metrics
    }

    /// p50 and p99 of the local and of the forwarded outcomes (explains a cluster latency).
    private static func pathLatencyMetrics(
        prefix: String, local: [LatencySummary], forwarded: [LatencySummary]
    ) -> [SummaryMetric?] {
        latencyMetrics(prefix: prefix, name: "local_latency", p999: false, local)
            + latencyMetrics(prefix: prefix, name: "forwarded_latency", p999: false, forwarded)
    }

    /// Every reported number, in a fixed order, with its per-run values.
    static func metrics(of runs: [RunResult]) -> [SummaryMetric] {
        var metrics: [SummaryMetric?] = []
        for layout in [ReplicaSet.Layout.memory, .single, .cluster, .redisCluster] {
            let results = runs.compactMap { $0.throughput(layout) }
            let prefix = layout.metricPrefix
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).outcomes_per_second", unit: "outcomes/s", perRun: results.map(\.outcomesPerSecond))
            )
            metrics += latencyMetrics(prefix: prefix, results.map(\.latency))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).redis_commands_per_outcome", unit: "commands/outcome",
                    perRun: results.compactMap(\.redisCommandsPerOutcome)))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).redis_calls_per_outcome_including_scripts", unit: "calls/outcome",
                    perRun: results.compactMap(\.redisCallsIncludingScriptsPerOutcome)))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).replica_cpu_us_per_outcome", unit: "µs/outcome",
                    perRun: results.compactMap(\.replicaCPUMicrosecondsPerOutcome)))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).redis_cpu_us_per_outcome", unit: "µs/outcome",
                    perRun: results.compactMap { $0.layout == .memory ? nil : $0.redisCPUMicrosecondsPerOutcome }))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).bench_cpu_us_per_outcome", unit: "µs/outcome",
                    perRun: results.compactMap(\.benchCPUMicrosecondsPerOutcome)))
            metrics.append(
                SummaryMetric(name: "\(prefix).cores_busy", unit: "cores", perRun: results.compactMap(\.coresBusy)))
            if layout.replicaCount > 1 {
                metrics.append(
                    SummaryMetric(
                        name: "\(prefix).forwarded_fraction", unit: "ratio", perRun: results.map(\.forwardedFraction)))
                metrics += pathLatencyMetrics(
                    prefix: prefix, local: results.compactMap(\.localLatency),
                    forwarded: results.compactMap(\.forwardedLatency))
            }
        }
        metrics.append(
            SummaryMetric(
                name: "cluster_to_single_ratio", unit: "ratio", perRun: runs.compactMap(\.clusterToSingleRatio)))
        metrics.append(
            SummaryMetric(
                name: "redis_cluster_to_cluster_ratio", unit: "ratio",
                perRun: runs.compactMap(\.redisClusterToClusterRatio)))
        for layout in [ReplicaSet.Layout.single, .cluster, .redisCluster] {
            let results = runs.compactMap { $0.halfLoad(layout) }
            let prefix = "half_load.\(layout.metricPrefix)"
            metrics.append(
                SummaryMetric(name: "\(prefix).target_rate", unit: "outcomes/s", perRun: results.map(\.targetRate)))
            metrics.append(
                SummaryMetric(name: "\(prefix).achieved_rate", unit: "outcomes/s", perRun: results.map(\.achievedRate)))
            metrics += latencyMetrics(prefix: prefix, results.map(\.latency))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).skipped_arrivals", unit: "arrivals",
                    perRun: results.map { Double($0.skippedArrivals) }))
            if layout.replicaCount > 1 {
                metrics += pathLatencyMetrics(
                    prefix: prefix, local: results.compactMap(\.localLatency),
                    forwarded: results.compactMap(\.forwardedLatency))
            }
        }
        metrics += relayMetrics(of: runs)
        let idle = runs.compactMap(\.idle)
        metrics.append(
            SummaryMetric(name: "idle.kib_per_connection", unit: "KiB", perRun: idle.map(\.perConnectionKiB)))
        return metrics.compactMap { $0 }
    }

    /// The targets of issues #4 and #16 (#16's where it raised #4's: three replicas at 0.8 of one, p99 under
    /// 3 ms at half of the three-replica peak, 10 KiB per idle connection), for the metrics that were measured.
    static func targets(from metrics: [SummaryMetric]) -> [TargetResult] {
        func median(_ name: String) -> Double? { metrics.first { $0.name == name }?.median }
        var targets: [TargetResult] = []
        if let ratio = median("cluster_to_single_ratio") {
            targets.append(
                TargetResult(
                    target: "three replicas >= 80% of one replica's throughput", metric: "cluster_to_single_ratio",
                    value: ratio, comparison: ">=", threshold: 0.8))
        }
        for layout in ["single", "cluster", "redis_cluster"] {
            if let commands = median("\(layout).redis_commands_per_outcome") {
                targets.append(
                    TargetResult(
                        target: "<= 3 Redis commands per outcome (\(layout))",
                        metric: "\(layout).redis_commands_per_outcome", value: commands, comparison: "<=", threshold: 3)
                )
            }
        }
        for (layout, milliseconds) in [("single", 5.0), ("cluster", 3.0)] {
            if let p99 = median("half_load.\(layout).latency_p99") {
                targets.append(
                    TargetResult(
                        target: "p99 < \(Int(milliseconds)) ms at half of the peak (\(layout))",
                        metric: "half_load.\(layout).latency_p99", value: p99, comparison: "<", threshold: milliseconds)
                )
            }
        }
        if let perConnection = median("idle.kib_per_connection") {
            targets.append(
                TargetResult(
                    target: "<= 10 KiB server RSS per idle connection", metric: "idle.kib_per_connection",
                    value: perConnection, comparison: "<=", threshold: 10))
        }
        return targets + relayTargets(from: metrics)
    }
}
