import AffinityTestSupport
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import AffinityBench

/// Runs the built `affinity-bench --quick --json` against real affinity-server and redis-server processes and
/// checks the functional facts of its report (never timing targets).
@Suite("affinity-bench --quick")
struct QuickRunTests {
    @Test(
        "every phase runs; every outcome reaches its own client; Redis and RSS numbers are real",
        .timeLimit(.minutes(4)))
    func quickRun() async throws {
        let directory = builtProductsDirectory()
        let executable = directory.appendingPathComponent("affinity-bench").path
        try #require(
            FileManager.default.isExecutableFile(atPath: executable),
            "affinity-bench not built at \(executable); run scripts/test.sh or swift build")
        let (status, output, errors) = try await runProcess(
            executable, ["--quick", "--json", "--silent", "--bin-dir", directory.path])
        try #require(status == 0, "affinity-bench exited \(status):\n\(errors)")
        let report = try JSONDecoder().decode(BenchReport.self, from: output)

        #expect(report.passed)
        #expect(report.failure == nil)
        #expect(
            report.setup.phases == ["memory", "single", "cluster", "redis-cluster", "half-load", "relay", "idle"])
        let counts = report.correctness
        #expect(counts.sent > 0)
        #expect(counts.received == counts.sent)
        #expect(counts.lost == 0 && counts.wrongClient == 0 && counts.duplicates == 0 && counts.corrupted == 0)
        #expect(counts.notDelivered == 0 && counts.protocolErrors == 0)

        let run = try #require(report.runs.first)
        #expect(report.runs.count == 1)
        for layout in [ReplicaSet.Layout.memory, .single, .cluster, .redisCluster] {
            let result = try #require(run.throughput(layout), "no closed-loop result for \(layout)")
            #expect(result.outcomes > 0)
            #expect(result.outcomesPerSecond > 0)
            #expect(result.latency.count > 0 && result.latency.p50Ms > 0)
            #expect(result.latency.p50Ms <= result.latency.p99Ms && result.latency.p99Ms <= result.latency.p999Ms)
            if layout == .memory {
                #expect(result.redisCommands == nil)
            } else {
                // Commands per outcome come from real INFO commandstats deltas: the scripts run as EVALSHA.
                let breakdown = try #require(result.redisCommandBreakdown)
                #expect((breakdown["evalsha"] ?? 0) > 0, "\(breakdown)")
                #expect((result.redisCommandsPerOutcome ?? 0) > 0)
                #expect((result.redisCallsIncludingScriptsPerOutcome ?? 0) >= (result.redisCommandsPerOutcome ?? 0))
            }
        }
        // One replica delivers everything locally; three replicas forward two thirds.
        #expect(run.throughput(.single)?.forwardedFraction == 0)
        let forwarded = try #require(run.throughput(.cluster)?.forwardedFraction)
        #expect(forwarded > 0.55 && forwarded < 0.78, "forwarded fraction \(forwarded)")
        #expect(run.clusterToSingleRatio != nil)
        // The same three replicas on a Redis Cluster (commandstats summed over its three masters).
        let onRedisCluster = try #require(run.throughput(.redisCluster)?.forwardedFraction)
        #expect(onRedisCluster > 0.55 && onRedisCluster < 0.78, "forwarded fraction \(onRedisCluster)")
        #expect(run.redisClusterToClusterRatio != nil)

        for layout in [ReplicaSet.Layout.single, .cluster, .redisCluster] {
            let half = try #require(run.halfLoad(layout), "no half-load result for \(layout)")
            let peak = try #require(run.throughput(layout)?.outcomesPerSecond)
            #expect(abs(half.targetRate - peak / 2) < 0.001)
            #expect(half.outcomes > 0 && half.latency.count > 0)
        }

        // The relay: pre-subscribed keys, on the embedded store and with Redis, saturated and at a fixed rate.
        for layout in [ReplicaSet.Layout.memory, .single] {
            let saturated = try #require(run.relay(layout), "no relay result for \(layout)")
            #expect(saturated.outcomes > 0 && saturated.latency.count > 0)
            #expect((saturated.replicaCPUMicrosecondsPerOutcome ?? 0) > 0)
            let fixed = try #require(run.relayFixedRate(layout), "no fixed-rate relay result for \(layout)")
            #expect(fixed.targetRate == 4000)
            #expect(fixed.outcomes > 0 && fixed.latency.count > 0)
            #expect((fixed.replicaCPUMicrosecondsPerOutcome ?? 0) > 0)
        }
        // A relayed outcome on a subscribed key costs the replica no Redis command.
        #expect(run.relay(.single)?.redisCommandsPerOutcome == 0)

        let idle = try #require(run.idle)
        #expect(idle.connections == 500)
        #expect(idle.rssBeforeKiB > 0 && idle.rssAfterKiB > 0)

        let names = Set(report.metrics.map(\.name))
        for name in [
            "memory.outcomes_per_second", "single.redis_commands_per_outcome", "cluster.latency_p999",
            "cluster_to_single_ratio", "half_load.cluster.latency_p99", "idle.kib_per_connection",
            "redis_cluster.outcomes_per_second", "redis_cluster.redis_commands_per_outcome",
            "redis_cluster.latency_p99", "redis_cluster_to_cluster_ratio", "half_load.redis_cluster.latency_p99",
            "relay.memory.replica_cpu_us_per_outcome", "relay.redis.fixed_rate_cpu_ratio",
        ] {
            #expect(names.contains(name), "missing metric \(name)")
        }
        #expect(report.targets.count == 11)
    }

    @Test("invalid options exit 64, a missing server exits 1, each with a clear message")
    func invalidOptions() async throws {
        let directory = builtProductsDirectory()
        let executable = directory.appendingPathComponent("affinity-bench").path
        try #require(FileManager.default.isExecutableFile(atPath: executable), "affinity-bench not built")
        let (status, _, errors) = try await runProcess(executable, ["--phases", "warp-speed"])
        #expect(status == 64)
        #expect(errors.contains("unknown phase 'warp-speed'"), "\(errors)")
        let (missing, _, missingErrors) = try await runProcess(
            executable, ["--quick", "--phases", "memory", "--bin-dir", "/nonexistent"])
        #expect(missing == 1)
        #expect(missingErrors.contains("affinity-server not found"), "\(missingErrors)")
    }
}

/// Runs a process to its end off the cooperative pool; returns its status, stdout and stderr.
func runProcess(_ executable: String, _ arguments: [String]) async throws -> (Int32, Data, String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                let output = Pipe()
                let errors = Pipe()
                process.standardOutput = output
                process.standardError = errors
                try process.run()
                // Read stderr concurrently so that neither pipe fills up and blocks the child.
                let errorData = Mutex<Data>(Data())
                let reader = DispatchGroup()
                reader.enter()
                DispatchQueue.global().async {
                    let data = errors.fileHandleForReading.readDataToEndOfFile()
                    errorData.withLock { $0 = data }
                    reader.leave()
                }
                let data = output.fileHandleForReading.readDataToEndOfFile()
                reader.wait()
                process.waitUntilExit()
                let text = String(decoding: errorData.withLock { $0 }, as: UTF8.self)
                continuation.resume(returning: (process.terminationStatus, data, text))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
