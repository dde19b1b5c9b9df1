/// A change of the client's connection, delivered by ``RedisClient/connectionEvents()``.
///
/// After a `.connected` that follows a `.disconnected`, Redis may have restarted empty: replicas write back
/// their routes and re-register.
public enum RedisConnectionEvent: Sendable {
    /// A connection is established and ready (handshake done). `generation` counts connections from 1.
    case connected(generation: Int)
    /// The connection `generation` was lost; commands fail with ``RedisError/Code/connection`` until the next
    /// `.connected`.
    case disconnected(generation: Int, reason: RedisError)
    /// A connection attempt failed; another follows after the back-off delay.
    case connectFailed(RedisError)
}
