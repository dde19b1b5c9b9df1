import NIOCore

/// What a ``RedisClient`` in Redis Cluster mode knows and holds, kept in its state lock: the slot map, one
/// pipelined connection per master, whether the whole cluster is usable, and how the task that maintains them
/// is woken (a lost connection, a `MOVED` or `ASK` naming a node the client has no connection to).
struct RedisClusterConnections {
    /// The last slot map (from `CLUSTER SHARDS`, corrected by `MOVED` replies); `nil` until the first one.
    var slotMap: RedisClusterSlotMap?
    /// One ready connection per master.
    var connections: [RedisEndpoint: RedisConnection] = [:]
    /// Whether every slot has a master the client is connected to, and `.connected` was announced for it.
    var usable = false
    /// A wake-up came while the maintaining task was busy: it refreshes once more before waiting.
    var wakeRequested = false
    /// The maintaining task, waiting for a wake-up.
    var wakeWaiter: CheckedContinuation<Void, Never>?
    /// Ends the maintaining task's back-off wait.
    var wakeTimer: Scheduled<Void>?
    /// Callers waiting for the next refresh of the slot map (after a redirection to an unknown node).
    var refreshWaiters: [CheckedContinuation<Void, Never>] = []

    /// The connection to the master of `slot` (`nil`: to any master), or why there is none.
    func connection(forSlot slot: Int?, clusterDescription: String) -> Result<RedisConnection, RedisError> {
        guard let slotMap else {
            return .failure(
                RedisError(code: .connection, message: "not connected to the redis \(clusterDescription) yet"))
        }
        guard let slot else {
            for master in slotMap.masters {
                if let connection = connections[master] { return .success(connection) }
            }
            return .failure(
                RedisError(code: .connection, message: "not connected to any master of the redis \(clusterDescription)")
            )
        }
        guard let master = slotMap.master(forSlot: slot) else {
            return .failure(
                RedisError(code: .connection, message: "no master of the redis cluster serves slot \(slot)"))
        }
        guard let connection = connections[master] else {
            return .failure(
                RedisError(code: .connection, message: "not connected to \(master), the master of slot \(slot)"))
        }
        return .success(connection)
    }

    /// Takes the maintaining task's waiter (and cancels its back-off timer), or notes the wake-up for later.
    mutating func takeWakeWaiter() -> CheckedContinuation<Void, Never>? {
        wakeTimer?.cancel()
        wakeTimer = nil
        guard let waiter = wakeWaiter else {
            wakeRequested = true
            return nil
        }
        wakeWaiter = nil
        return waiter
    }
}
