/// The Redis the replicas of a ``ReplicaSet`` share: one `redis-server` (``RedisServer``) or a Redis Cluster
/// (``RedisClusterNodes``), started and stopped by the benchmark.
public protocol BenchRedis: Sendable {
    /// The `--redis-url` the replicas get.
    var url: String { get }
    /// Every Redis process (for CPU time and liveness).
    var processes: [ChildProcess] { get }
    /// The calls per command so far (`INFO commandstats`; a cluster's summed over its masters).
    func commandCalls() async throws -> [String: Int]
    /// Kills every Redis process.
    func stop()
}
