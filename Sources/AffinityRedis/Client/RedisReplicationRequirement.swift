/// How many replicas must confirm a write (`WAIT`) before it counts as done, and how long to wait for them.
///
/// Redis replicates asynchronously: a write the master acknowledged can vanish when a replica that had not
/// received it is promoted. `WAIT` after the write narrows that window to writes that no replica confirmed;
/// a write that comes back short is reported as ``RedisError/Code/replication``, so the caller can answer
/// "unavailable, retry" instead of promising durability it does not have.
public struct RedisReplicationRequirement: Sendable, Hashable {
    /// Replicas that must confirm; 0 turns confirmation off.
    public var replicas: Int
    /// The longest wait for them (`WAIT`'s timeout).
    public var timeout: Duration

    /// Creates a requirement.
    public init(replicas: Int, timeout: Duration = .seconds(1)) {
        self.replicas = max(0, replicas)
        self.timeout = timeout
    }

    /// No confirmation: a write counts once the master applied it.
    public static let none = RedisReplicationRequirement(replicas: 0)
}
