/// Everything an affinity-server replica needs to run, with production defaults.
///
/// The executable fills it from flags and `AFFINITY_*` environment variables; tests build it
/// directly (usually with `port: 0`).
public struct AffinityConfiguration: Sendable {
    /// Interface to listen on.
    public var host: String = "0.0.0.0"
    /// Port for WebSocket and HTTP; 0 picks a free port.
    public var port: Int = 8080
    /// When set, `/metrics` is served on this port only, and `/health/*` on both (0 picks a free port).
    public var metricsPort: Int?
    /// This replica's id, sent in `welcome` and written into routes.
    public var replicaID: String
    /// File with the tokens clients may use, one per line; nil leaves the client role open.
    public var clientTokenFile: String?
    /// File with the tokens workers may use, one per line; nil leaves the worker role open.
    public var workerTokenFile: String?
    /// How long a parked outcome is kept for a client to subscribe.
    public var parkTTL: Duration = .seconds(300)
    /// How long a delivery waits for a subscribed client's `ack` before parking the outcome.
    public var ackTimeout: Duration = .seconds(10)
    /// The largest message accepted (WebSocket message or HTTP body), in bytes.
    public var maxMessageBytes: Int = 1 << 20
    /// Subscriptions one connection may hold.
    public var maxSubscriptions: Int = 1000
    /// Bytes that may wait in one connection's outbound queue before it is closed as a slow consumer.
    public var maxOutboundBytes: Int = 8 << 20
    /// Interval of WebSocket pings; a peer that has not answered the previous ping is dropped.
    public var pingInterval: Duration = .seconds(20)
    /// Upper bound for the whole graceful shutdown.
    public var drainTimeout: Duration = .seconds(25)
    /// How long a WebSocket close this server sent waits for the peer's close before the connection is dropped.
    public var closeHandshakeTimeout: Duration = .seconds(3)
    /// Parked outcomes kept per key; more are refused with `too_large`.
    public var maxParkedPerKey: Int = 1000
    /// Parked outcomes kept in total; more are refused with `too_large`.
    public var maxParkedTotal: Int = 100_000
    /// Bytes of parked outcomes (their `outcome` frames) kept per key, in either store; more are refused
    /// with `too_large`.
    public var maxParkedBytesPerKey: Int = 64 << 20
    /// Bytes of parked outcomes the embedded store keeps in total; more are refused with `too_large`. The
    /// default keeps a replica with default settings well inside the 512 MiB memory limit of the base
    /// Kubernetes manifest (docs/DEPLOY.md has the arithmetic); Redis bounds its own memory.
    public var maxParkedBytes: Int = 128 << 20
    /// Outcomes sent to one client connection and not acknowledged yet; past that, live outcomes for it park
    /// until it acknowledges, so a client that never acks cannot grow the replica's memory.
    public var maxUnacknowledgedPerConnection: Int = 10_000
    /// Outcomes of a parked backlog handed to a subscriber at once; the next page follows once these were
    /// acknowledged (the bytes of a page are bounded by a quarter of ``maxOutboundBytes``).
    public var parkedPageSize: Int = 100
    /// The longest `timeout` a long poll (`GET /v1/outcomes/{key}`) may ask for.
    public var maxLongPollTimeout: Duration = .seconds(60)
    /// How often the routes of local subscriptions are written back to a shared store (cluster mode).
    public var routeRefreshInterval: Duration = .seconds(30)
    /// Outcomes one worker connection may have in flight (read, and queued or in delivery); at the bound, the
    /// replica stops reading from that connection until answers make room (back-pressure, not an error).
    public var maxOutcomesInFlight: Int = 1000
    /// Bytes of the outcome frames one worker connection may have in flight (one outcome always may); at the
    /// bound, reading from that connection pauses like at ``maxOutcomesInFlight``.
    public var maxInFlightBytes: Int = 16 << 20
    /// Accept the Node package's wire protocol (zeebe-node-affinity) on `/`, without authentication: every
    /// outcome reaches every legacy client of the cluster, and legacy workers' outcomes reach protocol v1
    /// subscribers too. Keep `/` reachable only inside the cluster network.
    public var legacyProtocol: Bool = false
    /// Protocol errors in a row after which a connection is closed with 1008.
    public var maxConsecutiveErrors: Int = 100
    /// How long a new connection on the main port may take to send its first request head; one
    /// that has not sent it by then (idle, or sending it byte by byte) is closed. A plain HTTP
    /// connection kept alive is also closed after this long idle between requests.
    public var handshakeTimeout: Duration = .seconds(10)
    /// WebSocket connections this replica holds at most; further upgrades are refused with 503
    /// `unavailable` while the open ones are served. The default fits the 512 MiB memory limit of
    /// the Kubernetes manifests (docs/DEPLOY.md has the arithmetic).
    public var maxConnections: Int = 10_000

    /// Creates a configuration with defaults; `replicaID` defaults to the host name.
    public init(replicaID: String = HostName.current) {
        self.replicaID = replicaID
    }

    /// One page of a parked backlog: ``parkedPageSize`` outcomes, at most a quarter of the outbound budget
    /// past the first, so that a page never fills a connection's outbound queue.
    public var parkedPage: ParkedPageLimit {
        ParkedPageLimit(count: parkedPageSize, bytes: max(1, maxOutboundBytes / 4))
    }

    /// The WebSocket layer's frame limit: above ``maxMessageBytes`` so that an oversized message
    /// is read and answered with `too_large` instead of dropping the connection.
    public var webSocketFrameLimit: Int {
        let slack = max(64 << 10, maxMessageBytes / 4)
        let (sum, overflow) = maxMessageBytes.addingReportingOverflow(slack)
        return overflow ? Int(Int32.max) : min(sum, Int(Int32.max))
    }
}
