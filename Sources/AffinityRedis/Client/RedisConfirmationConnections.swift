import NIOCore

/// The connections a ``RedisClient`` keeps for confirmed writes (a write followed by `WAIT`), kept in its state
/// lock: at most one next to each data connection (the shared one, or a cluster master's), to the same server,
/// opened on first use and closed with that data connection.
///
/// `WAIT` blocks the connection it is sent on until the replicas confirm or its timeout passes, and it counts
/// only the writes sent on that connection. So a confirmed write and its `WAIT` go together on a connection of
/// their own: routing lookups, route refreshes and every other command on the shared pipelined connection never
/// queue behind a `WAIT`. Confirmed writes queue behind each other's `WAIT`s, which take one replication round
/// trip while a replica is connected, and the `WAIT` timeout when none confirms.
struct RedisConfirmationConnections {
    struct Entry {
        /// The data connection this one stands next to (held, so that its identifier is not reused while the
        /// entry lives).
        let primary: RedisConnection
        /// Completes with the connection once it is open, or fails.
        let ready: EventLoopFuture<RedisConnection>
        /// The open connection, once there is one.
        var connection: RedisConnection?
    }

    /// By the identity of the data connection's channel.
    var entries: [ObjectIdentifier: Entry] = [:]

    /// Every open confirmation connection.
    var open: [RedisConnection] {
        entries.values.compactMap(\.connection)
    }
}
