extension BenchReport {
    /// The metric prefix of the relay phase on `layout`: `relay.memory` (embedded store), `relay.redis`.
    static func relayPrefix(_ layout: ReplicaSet.Layout) -> String {
        layout == .memory ? "relay.memory" : "relay.redis"
    }

    /// The relay phase's numbers: saturation (outcomes/s, latency, CPU per outcome), the fixed-rate run
    /// (achieved rate, latency, CPU per outcome) and, inside each run, fixed-rate CPU over saturation CPU.
    static func relayMetrics(of runs: [RunResult]) -> [SummaryMetric?] {
        var metrics: [SummaryMetric?] = []
        for layout in [ReplicaSet.Layout.memory, .single] {
            let prefix = relayPrefix(layout)
            let saturated = runs.compactMap { $0.relay(layout) }
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).outcomes_per_second", unit: "outcomes/s",
                    perRun: saturated.map(\.outcomesPerSecond)))
            metrics += latencyMetrics(prefix: prefix, saturated.map(\.latency))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).replica_cpu_us_per_outcome", unit: "µs/outcome",
                    perRun: saturated.compactMap(\.replicaCPUMicrosecondsPerOutcome)))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).bench_cpu_us_per_outcome", unit: "µs/outcome",
                    perRun: saturated.compactMap(\.benchCPUMicrosecondsPerOutcome)))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).redis_commands_per_outcome", unit: "commands/outcome",
                    perRun: saturated.compactMap(\.redisCommandsPerOutcome)))
            let fixed = runs.compactMap { $0.relayFixedRate(layout) }
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).fixed_rate.achieved_rate", unit: "outcomes/s", perRun: fixed.map(\.achievedRate)))
            metrics += latencyMetrics(prefix: "\(prefix).fixed_rate", fixed.map(\.latency))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).fixed_rate.replica_cpu_us_per_outcome", unit: "µs/outcome",
                    perRun: fixed.compactMap(\.replicaCPUMicrosecondsPerOutcome)))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).fixed_rate.skipped_arrivals", unit: "arrivals",
                    perRun: fixed.map { Double($0.skippedArrivals) }))
            metrics.append(
                SummaryMetric(
                    name: "\(prefix).fixed_rate_cpu_ratio", unit: "ratio",
                    perRun: runs.compactMap { $0.relayFixedRateCPURatio(layout) }))
        }
        return metrics
    }

    /// The relay targets of issue #16, for the metrics that were measured.
    static func relayTargets(from metrics: [SummaryMetric]) -> [TargetResult] {
        func median(_ name: String) -> Double? { metrics.first { $0.name == name }?.median }
        var targets: [TargetResult] = []
        for layout in [ReplicaSet.Layout.memory, .single] {
            let prefix = relayPrefix(layout)
            let store = layout == .memory ? "embedded store" : "Redis"
            if let cpu = median("\(prefix).replica_cpu_us_per_outcome") {
                targets.append(
                    TargetResult(
                        target: "<= 12 µs replica CPU per relayed outcome at saturation (\(store))",
                        metric: "\(prefix).replica_cpu_us_per_outcome", value: cpu, comparison: "<=", threshold: 12))
            }
            if let ratio = median("\(prefix).fixed_rate_cpu_ratio") {
                targets.append(
                    TargetResult(
                        target: "relay CPU per outcome at the fixed rate <= 1.5 x saturation (\(store))",
                        metric: "\(prefix).fixed_rate_cpu_ratio", value: ratio, comparison: "<=", threshold: 1.5))
            }
        }
        return targets
    }
}
