import Foundation
import Testing

@testable import AffinityBench

@Suite("Report math")
struct ReportMathTests {
    @Test("median of odd, even and empty lists")
    func median() {
        #expect(Statistics.median([3, 1, 2]) == 2)
        #expect(Statistics.median([4, 1, 3, 2]) == 2.5)
        #expect(Statistics.median([7]) == 7)
        #expect(Statistics.median([]) == nil)
    }

    @Test("latency percentiles come from the histogram, in milliseconds")
    func latencyPercentiles() {
        let recorder = LatencyRecorder()
        for microseconds in 1...1000 { recorder.record(nanoseconds: UInt64(microseconds) * 1000) }
        let summary = recorder.summary()
        #expect(summary.count == 1000)
        #expect(abs(summary.p50Ms - 0.5) < 0.001)
        #expect(abs(summary.p99Ms - 0.99) < 0.001)
        #expect(abs(summary.p999Ms - 0.999) < 0.001)
        #expect(abs(summary.maxMs - 1.0) < 0.001)
        #expect(LatencyRecorder().summary().count == 0)
    }

    @Test("local and forwarded outcomes get their own percentiles besides the overall ones")
    func latencyByPath() {
        let recorder = LatencyRecorder()
        for microseconds in 1...100 { recorder.record(nanoseconds: UInt64(microseconds) * 1000, forwarded: false) }
        for microseconds in 1...100 {
            recorder.record(nanoseconds: UInt64(10_000 + microseconds * 100) * 1000, forwarded: true)
        }
        #expect(recorder.summary().count == 200)
        #expect(recorder.summary(.local).count == 100)
        #expect(recorder.summary(.forwarded).count == 100)
        #expect(abs(recorder.summary(.local).p99Ms - 0.099) < 0.001)
        #expect(abs(recorder.summary(.forwarded).p50Ms - 15.0) < 0.02)
        #expect(recorder.summary(.local).maxMs < recorder.summary(.forwarded).p50Ms)
        var run = RunResult(run: 1)
        run.throughput = [
            ThroughputResult(
                layout: .cluster, concurrency: 1, outcomes: 200, seconds: 1, latency: recorder.summary(),
                localLatency: recorder.summary(.local), forwardedLatency: recorder.summary(.forwarded),
                forwardedFraction: 0.5, redisCommands: nil)
        ]
        let report = BenchReport.metrics(of: [run])
        #expect(report.first { $0.name == "cluster.forwarded_latency_p50" }.map { abs($0.median - 15.0) < 0.02 } == true)
        #expect(report.first { $0.name == "cluster.local_latency_p99" }.map { abs($0.median - 0.099) < 0.001 } == true)
    }

    @Test("commands per outcome divide the commandstats delta by the outcomes")
    func commandsPerOutcome() {
        let before = CommandStats.parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=100,usec=900,usec_per_call=9.00,rejected_calls=0,failed_calls=0\r\n"
                + "cmdstat_info:calls=3,usec=10\r\n")
        let after = CommandStats.parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=400,usec=3600\r\ncmdstat_hget:calls=2,usec=4\r\n"
                + "cmdstat_info:calls=5,usec=12\r\n")
        #expect(before == ["evalsha": 100, "info": 3])
        let delta = CommandStats.delta(from: before, to: after)
        #expect(delta == ["evalsha": 300, "hget": 2])
        let result = ThroughputResult(
            layout: .cluster, concurrency: 8, outcomes: 151, seconds: 2,
            latency: LatencySummary(count: 151, p50Ms: 1, p99Ms: 2, p999Ms: 3, maxMs: 4), forwardedFraction: 0.66,
            redisCommands: delta)
        // hget is counted as a call made inside a script; evalsha is what the replicas sent.
        #expect(result.redisCommands == 300)
        #expect(abs((result.redisCommandsPerOutcome ?? 0) - 300.0 / 151) < 1e-9)
        #expect(result.redisCallsIncludingScripts == 302)
        #expect(result.redisCallsIncludingScriptsPerOutcome == 2)
        #expect(CommandStats.isTopLevel("script|load"))
        #expect(!CommandStats.isTopLevel("hset"))
        #expect(result.outcomesPerSecond == 75.5)
    }

    @Test("VmRSS is read from /proc status text")
    func vmRSS() {
        #expect(ProcessMemory.vmRSS(inStatus: "Name:\tx\nVmPeak:\t  9999 kB\nVmRSS:\t   12345 kB\n") == 12345)
        #expect(ProcessMemory.vmRSS(inStatus: "Name:\tx\n") == nil)
        #expect(ProcessMemory.vmRSS(inStatus: "VmRSS:\tlots kB\n") == nil)
    }

    @Test("idle memory per connection is the RSS growth divided by the connections")
    func idlePerConnection() {
        let idle = IdleResult(connections: 10_000, rssBeforeKiB: 20_000, rssAfterKiB: 220_000)
        #expect(idle.perConnectionKiB == 20)
    }

    @Test("medians, the ratio inside each run, and the targets")
    func reportTargets() throws {
        func latency(_ p99: Double) -> LatencySummary {
            LatencySummary(count: 10, p50Ms: p99 / 2, p99Ms: p99, p999Ms: p99 * 2, maxMs: p99 * 3)
        }
        func run(_ number: Int, single: Double, cluster: Double, halfP99: Double, idle: Int) -> RunResult {
            var run = RunResult(run: number)
            run.throughput = [
                ThroughputResult(
                    layout: .single, concurrency: 4, outcomes: Int(single), seconds: 1, latency: latency(1),
                    forwardedFraction: 0, redisCommands: ["evalsha": Int(single) * 2]),
                ThroughputResult(
                    layout: .cluster, concurrency: 4, outcomes: Int(cluster), seconds: 1, latency: latency(2),
                    forwardedFraction: 2.0 / 3, redisCommands: ["evalsha": Int(cluster) * 4]),
            ]
            run.halfLoad = [
                OpenLoopResult(
                    layout: .cluster, targetRate: cluster / 2, achievedRate: cluster / 2, outcomes: 5,
                    latency: latency(halfP99))
            ]
            run.idle = IdleResult(connections: 100, rssBeforeKiB: 1000, rssAfterKiB: 1000 + idle * 100)
            var counts = CorrectnessCounts()
            counts.sent = 10
            counts.received = 10
            run.correctness = counts
            return run
        }
        let setup = BenchReport.Setup(
            phases: ["single", "cluster", "half-load", "idle"], runs: 3, warmupSeconds: 1, durationSeconds: 1,
            concurrency: 4, clientsPerReplica: 1, workersPerReplica: 1, payloadBytes: 128, idleConnections: 100,
            cpus: 2,
            server: "affinity-server", redisVersion: "Redis 7")
        let report = BenchReport(
            setup: setup,
            runs: [
                run(1, single: 1000, cluster: 500, halfP99: 2, idle: 8),
                run(2, single: 2000, cluster: 1700, halfP99: 6, idle: 12),
                run(3, single: 1000, cluster: 900, halfP99: 2.5, idle: 9),
            ], failure: nil)
        // Ratios per run: 0.5, 0.85, 0.9 -> median 0.85 (not 900 / 1000 from the medians of each layout).
        #expect(report.median("cluster_to_single_ratio") == 0.85)
        #expect(report.median("single.outcomes_per_second") == 1000)
        #expect(report.median("cluster.redis_commands_per_outcome") == 4)
        #expect(report.median("half_load.cluster.latency_p99") == 2.5)
        #expect(report.median("idle.kib_per_connection") == 9)
        let verdicts = Dictionary(uniqueKeysWithValues: report.targets.map { ($0.metric, $0.passed) })
        #expect(verdicts["cluster_to_single_ratio"] == true)
        #expect(verdicts["single.redis_commands_per_outcome"] == true)
        #expect(verdicts["cluster.redis_commands_per_outcome"] == false)
        #expect(verdicts["half_load.cluster.latency_p99"] == true)
        #expect(verdicts["idle.kib_per_connection"] == true)
        #expect(report.passed)
        #expect(report.correctness.sent == 30)
        let table = report.renderTable()
        #expect(table.contains("MISS  <= 3 Redis commands per outcome (cluster)"))
        #expect(table.contains("result: OK"))
    }

    @Test("relay: CPU per outcome at saturation and at the fixed rate, their ratio inside each run, the targets")
    func relayMetrics() throws {
        func latency(_ p99: Double) -> LatencySummary {
            LatencySummary(count: 10, p50Ms: p99 / 2, p99Ms: p99, p999Ms: p99 * 2, maxMs: p99 * 3)
        }
        // Saturation: `outcomes` in 2 s with `cpu` replica CPU seconds; fixed rate: 4000 outcomes in 1 s.
        func run(_ number: Int, outcomes: Int, cpu: Double, fixedCPU: Double) -> RunResult {
            var run = RunResult(run: number)
            for layout in [ReplicaSet.Layout.memory, .single] {
                run.relay.append(
                    ThroughputResult(
                        layout: layout, concurrency: 64, outcomes: outcomes, seconds: 2, latency: latency(1),
                        forwardedFraction: 0, redisCommands: layout == .memory ? nil : ["evalsha": 0],
                        cpuSeconds: (replicas: cpu, redis: 0, bench: cpu / 2)))
                run.relayFixedRate.append(
                    OpenLoopResult(
                        layout: layout, targetRate: 4000, achievedRate: 4000, outcomes: 4000, latency: latency(0.5),
                        cpuSeconds: (replicas: fixedCPU, redis: 0, bench: 0.1)))
            }
            return run
        }
        // µs per outcome at saturation: 10, 20, 12; at the fixed rate: 10, 25, 20; ratios 1.0, 1.25, 1.67.
        let runs = [
            run(1, outcomes: 100_000, cpu: 1.0, fixedCPU: 0.04),
            run(2, outcomes: 50_000, cpu: 1.0, fixedCPU: 0.1),
            run(3, outcomes: 100_000, cpu: 1.2, fixedCPU: 0.08),
        ]
        #expect(runs[0].relay(.memory)?.replicaCPUMicrosecondsPerOutcome == 10)
        #expect(runs[0].relay(.memory)?.outcomesPerSecond == 50_000)
        #expect(runs[1].relayFixedRate(.single)?.replicaCPUMicrosecondsPerOutcome == 25)
        #expect(runs[1].relayFixedRateCPURatio(.single) == 1.25)
        #expect(RunResult(run: 9).relayFixedRateCPURatio(.memory) == nil)

        let setup = BenchReport.Setup(
            phases: ["relay"], runs: 3, warmupSeconds: 1, durationSeconds: 2, concurrency: 64, clientsPerReplica: 4,
            workersPerReplica: 2, payloadBytes: 128, idleConnections: 1, cpus: 2, server: "s", redisVersion: "r")
        let report = BenchReport(setup: setup, runs: runs, failure: nil)
        for prefix in ["relay.memory", "relay.redis"] {
            #expect(report.median("\(prefix).outcomes_per_second") == 50_000)
            #expect(report.median("\(prefix).replica_cpu_us_per_outcome") == 12)
            #expect(report.median("\(prefix).fixed_rate.replica_cpu_us_per_outcome") == 20)
            #expect(report.median("\(prefix).fixed_rate.achieved_rate") == 4000)
            // The median of the per-run ratios (1.25), not 20 / 12 from the medians.
            #expect(report.median("\(prefix).fixed_rate_cpu_ratio") == 1.25)
        }
        #expect(report.median("relay.redis.redis_commands_per_outcome") == 0)
        #expect(report.median("relay.memory.redis_commands_per_outcome") == nil)
        let verdicts = Dictionary(uniqueKeysWithValues: report.targets.map { ($0.metric, $0.passed) })
        #expect(verdicts["relay.memory.replica_cpu_us_per_outcome"] == true)
        #expect(verdicts["relay.redis.fixed_rate_cpu_ratio"] == true)
        #expect(report.targets.count == 4)

        let slower = BenchReport(
            setup: setup, runs: [run(1, outcomes: 50_000, cpu: 1.0, fixedCPU: 0.2)], failure: nil)
        let missed = Dictionary(uniqueKeysWithValues: slower.targets.map { ($0.metric, $0.passed) })
        #expect(missed["relay.redis.replica_cpu_us_per_outcome"] == false)
        #expect(missed["relay.memory.fixed_rate_cpu_ratio"] == false)
        #expect(slower.passed)
    }

    @Test("a lost or misdelivered outcome fails the report, a missed target does not")
    func correctnessFailsTheReport() {
        var run = RunResult(run: 1)
        run.correctness.sent = 5
        run.correctness.received = 4
        run.correctness.lost = 1
        let setup = BenchReport.Setup(
            phases: ["memory"], runs: 1, warmupSeconds: 0, durationSeconds: 1, concurrency: 1, clientsPerReplica: 1,
            workersPerReplica: 1, payloadBytes: 128, idleConnections: 1, cpus: 2, server: "s", redisVersion: "r")
        let report = BenchReport(setup: setup, runs: [run], failure: nil)
        #expect(!report.passed)
        #expect(report.failure?.contains("1 lost") == true)
        var wrong = CorrectnessCounts()
        wrong.sent = 1
        wrong.received = 1
        wrong.wrongClient = 1
        #expect(!wrong.isClean)
    }
}

@Suite("Process counters")
struct ProcessCounterTests {
    @Test("CPU seconds are utime + stime of /proc/<pid>/stat, after the command name")
    func cpuFromStat() {
        let line = "1234 (affinity server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 6 0 1 2 3"
        #expect(ProcessCPU.seconds(inStat: line, ticksPerSecond: 100) == 3.0)
        #expect(ProcessCPU.seconds(inStat: "garbage", ticksPerSecond: 100) == nil)
        #expect((ProcessCPU.seconds(pid: getpid()) ?? -1) >= 0)
    }
}
