/// A part of the benchmark that `--phases` selects.
public enum BenchPhase: String, CaseIterable, Codable, Sendable {
    /// One replica on the embedded in-memory store, closed loop (extra information).
    case memory
    /// One replica in cluster mode with Redis, closed loop.
    case single
    /// Three replicas with Redis, two thirds of the outcomes forwarded, closed loop.
    case cluster
    /// The same three replicas on a Redis Cluster of three masters with one replica each (`redis-cluster://`),
    /// closed loop.
    case redisCluster = "redis-cluster"
    /// Open loop at half of the peak measured by `single`, `cluster` and `redis-cluster` in the same run.
    case halfLoad = "half-load"
    /// Pre-subscribed keys, many outcomes per subscription, one replica, on the embedded store and with
    /// Redis: closed loop at saturation, then a fixed rate (`relay.memory`, `relay.redis`).
    case relay
    /// Server RSS per idle connection (one replica in cluster mode with Redis).
    case idle
}
