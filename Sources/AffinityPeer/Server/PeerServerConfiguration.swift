/// How a replica serves the peer channel.
public struct PeerServerConfiguration: Sendable {
    /// The address to bind (`--host`; `0.0.0.0` in a container).
    public var host: String
    /// The port to bind (`--peer-port`); 0 picks a free port (tests), see ``PeerServer/listeningPort()``.
    public var port: Int
    /// This replica's id, returned in every answer.
    public var replicaID: String
    /// The largest request message accepted, in bytes; larger requests fail with `resourceExhausted`.
    /// Must exceed the largest outcome the WebSocket side accepts (its variables plus a few hundred bytes).
    public var maxRequestBytes: Int
    /// Requests with a larger `hop_count` are refused (`failedPrecondition`): a routing loop.
    public var maxHopCount: Int
    /// The longest time a connection may stay idle before the server closes it; `nil` keeps it open.
    public var maxConnectionIdleTime: Duration?

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - host: The address to bind.
    ///   - port: The port to bind (0 for any free port).
    ///   - replicaID: This replica's id.
    ///   - maxRequestBytes: The largest request accepted (default 8 MiB).
    ///   - maxHopCount: The largest hop count accepted (default 4).
    ///   - maxConnectionIdleTime: Idle connections are closed after this (default: never; the pool keeps
    ///     one connection per peer open and the registry tells it when a peer is gone).
    public init(
        host: String = "0.0.0.0",
        port: Int,
        replicaID: String,
        maxRequestBytes: Int = 8 * 1024 * 1024,
        maxHopCount: Int = 4,
        maxConnectionIdleTime: Duration? = nil
    ) {
        self.host = host
        self.port = port
        self.replicaID = replicaID
        self.maxRequestBytes = maxRequestBytes
        self.maxHopCount = maxHopCount
        self.maxConnectionIdleTime = maxConnectionIdleTime
    }
}
