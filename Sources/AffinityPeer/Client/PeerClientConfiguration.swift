/// How a replica dials its peers.
public struct PeerClientConfiguration: Sendable {
    /// This replica's id, sent as `origin_replica` in pings.
    public var replicaID: String
    /// A DNS name every peer's certificate must hold (`--peer-tls-server-name`, e.g.
    /// `affinity-peer.<namespace>.svc`); `nil` verifies the chain against the cluster CA only (see
    /// docs/PEER.md for why that is safe).
    public var expectedServerName: String?
    /// The deadline of a forward when the caller gives none.
    public var defaultTimeout: Duration
    /// The largest request message sent, in bytes; must not exceed the peers' server limit.
    public var maxRequestBytes: Int
    /// A connection with no RPC for this long is closed; the next forward opens a new one.
    public var maxConnectionIdleTime: Duration
    /// HTTP/2 keepalive pings while RPCs are open, to notice a dead peer (kill -9 of a node, a partition)
    /// before the deadline; `nil` disables them.
    public var keepaliveInterval: Duration?
    /// The first delay before reconnecting to a peer that refused or dropped the connection.
    public var reconnectInitialBackoff: Duration
    /// The longest delay between reconnect attempts.
    public var reconnectMaximumBackoff: Duration

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - replicaID: This replica's id.
    ///   - expectedServerName: A name the peers' certificates must hold, or `nil` for chain-only checks.
    ///   - defaultTimeout: The deadline of a forward without an explicit one (default 5 s).
    ///   - maxRequestBytes: The largest request sent (default 8 MiB).
    ///   - maxConnectionIdleTime: Idle connections are closed after this (default 5 min).
    ///   - keepaliveInterval: Keepalive ping interval while RPCs are open (default 10 s).
    ///   - reconnectInitialBackoff: The first reconnect delay (default 100 ms).
    ///   - reconnectMaximumBackoff: The largest reconnect delay (default 2 s).
    public init(
        replicaID: String,
        expectedServerName: String? = nil,
        defaultTimeout: Duration = .seconds(5),
        maxRequestBytes: Int = 8 * 1024 * 1024,
        maxConnectionIdleTime: Duration = .seconds(300),
        keepaliveInterval: Duration? = .seconds(10),
        reconnectInitialBackoff: Duration = .milliseconds(100),
        reconnectMaximumBackoff: Duration = .seconds(2)
    ) {
        self.replicaID = replicaID
        self.expectedServerName = expectedServerName
        self.defaultTimeout = defaultTimeout
        self.maxRequestBytes = maxRequestBytes
        self.maxConnectionIdleTime = maxConnectionIdleTime
        self.keepaliveInterval = keepaliveInterval
        self.reconnectInitialBackoff = reconnectInitialBackoff
        self.reconnectMaximumBackoff = reconnectMaximumBackoff
    }
}
