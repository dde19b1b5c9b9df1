import Testing

@testable import AffinityBench

/// The `redis-cluster` phase's own parsing and report code (the phase itself runs in `QuickRunTests`).
@Suite("Redis Cluster phase")
struct RedisClusterPhaseTests {
    @Test("the phase parses, sorts after cluster, and half-load may measure it alone")
    func phase() throws {
        #expect(try BenchConfiguration.parsePhases("idle,redis-cluster,cluster") == [.cluster, .redisCluster, .idle])
        #expect(BenchPhase.allCases.contains(.redisCluster))
        var configuration = BenchConfiguration()
        configuration.phases = [.redisCluster, .halfLoad]
        try configuration.validate()
        #expect(ReplicaSet.Layout.redisCluster.replicaCount == 3)
        #expect(ReplicaSet.Layout.redisCluster.metricPrefix == "redis_cluster")
        #expect(ReplicaSet.Layout.cluster.metricPrefix == "cluster")
        #expect(ReplicaSet.Layout(rawValue: "redis-cluster") == .redisCluster)
    }

    @Test("commandstats of the masters add up per command; WAIT counts as a command the replicas send")
    func commandsSummedOverMasters() {
        let masters = [
            CommandStats.parse("cmdstat_evalsha:calls=100,usec=1\r\ncmdstat_wait:calls=4,usec=9\r\n"),
            CommandStats.parse("cmdstat_evalsha:calls=120,usec=1\r\ncmdstat_hset:calls=7,usec=1\r\n"),
            CommandStats.parse("cmdstat_evalsha:calls=80,usec=1\r\n"),
        ]
        let total = CommandStats.sum(masters)
        #expect(total == ["evalsha": 300, "wait": 4, "hset": 7])
        // a master's replicas acknowledge with REPLCONF: not the replicas' (affinity-server's) commands
        #expect(CommandStats.delta(from: ["replconf": 5], to: ["replconf": 35, "evalsha": 3]) == ["evalsha": 3])
        #expect(CommandStats.sum([]) == [:])
        #expect(CommandStats.isTopLevel("wait"))
        let result = ThroughputResult(
            layout: .redisCluster, concurrency: 8, outcomes: 152, seconds: 1,
            latency: LatencySummary(count: 152, p50Ms: 1, p99Ms: 2, p999Ms: 3, maxMs: 4), forwardedFraction: 0.66,
            redisCommands: total)
        #expect(result.redisCommands == 304)
        #expect(result.redisCommandsPerOutcome == 2)
        #expect(result.redisCallsIncludingScripts == 311)
    }

    @Test("CLUSTER INFO and INFO replication of the nodes")
    func nodeInfo() {
        #expect(
            RedisClusterNodes.isHealthy(
                clusterInfo: "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_ok:16384\r\n"))
        #expect(!RedisClusterNodes.isHealthy(clusterInfo: "cluster_state:fail\r\n"))
        #expect(!RedisClusterNodes.isHealthy(clusterInfo: ""))
        let master = """
            # Replication\r
            role:master\r
            connected_slaves:1\r
            slave0:ip=127.0.0.1,port=21001,state=online,offset=1234,lag=0\r
            slave1:ip=127.0.0.1,port=21002,state=wait_bgsave,offset=0,lag=0\r
            master_failover_state:no-failover\r
            """
        #expect(RedisClusterNodes.role(inReplicationInfo: master) == "master")
        #expect(RedisClusterNodes.onlineReplicas(inReplicationInfo: master) == 1)
        let replica = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nslave_read_repl_offset:1234\r\n"
        #expect(RedisClusterNodes.role(inReplicationInfo: replica) == "slave")
        #expect(RedisClusterNodes.onlineReplicas(inReplicationInfo: replica) == 0)
    }

    @Test("the report has the phase's medians, its forwarded fraction, its ratio to one Redis, and the command target")
    func report() throws {
        func latency(_ p99: Double) -> LatencySummary {
            LatencySummary(count: 100, p50Ms: p99 / 2, p99Ms: p99, p999Ms: p99 * 2, maxMs: p99 * 3)
        }
        func run(_ number: Int, cluster: Int, redisCluster: Int, p99: Double) -> RunResult {
            var run = RunResult(run: number)
            run.throughput = [
                ThroughputResult(
                    layout: .cluster, concurrency: 64, outcomes: cluster, seconds: 1, latency: latency(1),
                    localLatency: latency(0.5), forwardedLatency: latency(1.2), forwardedFraction: 0.66,
                    redisCommands: ["evalsha": cluster * 2]),
                ThroughputResult(
                    layout: .redisCluster, concurrency: 64, outcomes: redisCluster, seconds: 1, latency: latency(p99),
                    localLatency: latency(p99 / 2), forwardedLatency: latency(p99), forwardedFraction: 0.67,
                    redisCommands: ["evalsha": redisCluster * 2, "wait": redisCluster / 10]),
            ]
            return run
        }
        let runs = [
            run(1, cluster: 10_000, redisCluster: 9_000, p99: 2),
            run(2, cluster: 10_000, redisCluster: 11_000, p99: 4),
            run(3, cluster: 8_000, redisCluster: 8_000, p99: 3),
        ]
        let report = BenchReport(
            setup: BenchReport.Setup(
                phases: ["cluster", "redis-cluster"], runs: 3, warmupSeconds: 2, durationSeconds: 1, concurrency: 64,
                clientsPerReplica: 4, workersPerReplica: 2, payloadBytes: 128, idleConnections: 0, cpus: 2,
                server: "affinity-server", redisVersion: "7"),
            runs: runs, failure: nil)
        #expect(report.median("redis_cluster.outcomes_per_second") == 9_000)
        #expect(report.median("redis_cluster.latency_p99") == 3)
        #expect(report.median("redis_cluster.redis_commands_per_outcome") == 2.1)
        #expect(report.median("redis_cluster.forwarded_fraction") == 0.67)
        #expect(report.median("redis_cluster.forwarded_latency_p99") == 3)
        // the ratio is taken inside each run: 0.9, 1.1, 1.0
        let ratio = try #require(report.median("redis_cluster_to_cluster_ratio"))
        #expect(abs(ratio - 1.0) < 1e-9)
        let target = try #require(report.targets.first { $0.metric == "redis_cluster.redis_commands_per_outcome" })
        #expect(target.passed)
        #expect(report.renderTable().contains("redis_cluster.outcomes_per_second"))
    }
}
