/// How the Redis servers behind a ``RedisConfiguration`` are arranged. ``RedisClient`` hides the difference:
/// its callers send the same commands and scripts whichever it is.
public enum RedisTopology: Sendable, Hashable {
    /// One server at ``RedisConfiguration/host`` and ``RedisConfiguration/port`` (`redis://`, `rediss://`).
    case standalone
    /// A master managed by Redis Sentinel (`redis-sentinel://`, `rediss-sentinel://`): the client asks the
    /// sentinels for the master, checks it with `ROLE`, and follows failovers.
    case sentinel(RedisSentinelSettings)
    /// A Redis Cluster reached through these seed nodes (`redis-cluster://`, `rediss-cluster://`).
    case cluster(seeds: [RedisEndpoint])
}

/// The sentinels of a ``RedisTopology/sentinel(_:)`` deployment and how to talk to them.
///
/// The password of the data nodes stays in ``RedisConfiguration/password`` /
/// ``RedisConfiguration/passwordFile``; the sentinels have their own (`requirepass` in `sentinel.conf`).
public struct RedisSentinelSettings: Sendable, Hashable {
    /// The name the sentinels monitor the master under (`sentinel monitor <name> ...`).
    public var masterName: String
    /// The sentinels, asked in this order (a sentinel that answered moves to the front).
    public var sentinels: [RedisEndpoint]
    /// The sentinels' password (`AUTH`); `nil` when they need none. ``passwordFile`` takes precedence.
    public var password: String?
    /// A file holding the sentinels' password, read at every connection attempt.
    public var passwordFile: String?

    /// Creates sentinel settings without a password.
    public init(masterName: String, sentinels: [RedisEndpoint]) {
        self.masterName = masterName
        self.sentinels = sentinels
        self.password = nil
        self.passwordFile = nil
    }
}
