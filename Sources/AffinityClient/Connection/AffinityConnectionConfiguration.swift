public import NIOSSL

/// How a session or publisher reaches the affinity service.
///
/// ```swift
/// var connection = AffinityConnectionConfiguration(urls: ["wss://affinity.orders.svc:8080/v1/ws"])
/// connection.token = .file(path: "/var/run/secrets/affinity/client-token")
/// connection.tls = .makeClientConfiguration()
/// ```
public struct AffinityConnectionConfiguration: Sendable {
    /// The WebSocket URLs (`ws://` or `wss://`, path `/v1/ws`): one Kubernetes Service URL, or several
    /// replica URLs tried in turn. `run()` of a session or publisher throws `bad_request` when it is empty.
    public var urls: [String]
    /// The bearer token for the upgrade request; nil sends none.
    public var token: BearerToken?
    /// TLS settings for `wss://` URLs; nil uses the system defaults (full certificate verification).
    public var tls: TLSConfiguration?
    /// The name the server certificate is verified against (and sent as SNI) instead of the URL's
    /// host. Needed for `wss://` to an IP address, which cannot be used as SNI.
    public var tlsServerName: String?
    /// Reconnect delays.
    public var backoff = ReconnectBackoff()
    /// How long a new connection may take until `welcome`, before it is abandoned.
    public var handshakeTimeout: Duration = .seconds(10)
    /// The largest message accepted from the service, in bytes.
    public var maxMessageBytes: Int = 8 << 20
    /// The largest outcome frame a publisher sends; larger outcomes fail at once with `too_large`.
    /// Keep it at or below the service's `--max-message-bytes` (default 1 MiB): the service answers an
    /// oversized message with a `too_large` error that cannot name the outcome id.
    public var maxOutcomeBytes: Int = 1 << 20
    /// Interval of WebSocket pings that detect a dead replica; nil disables them.
    public var pingInterval: Duration? = .seconds(20)
    /// Outcome ids remembered after their request ended, to drop late duplicates.
    public var recentOutcomeIDCapacity: Int = 10_000

    /// Creates a configuration for `urls` (at least one).
    public init(urls: [String], token: BearerToken? = nil, tls: TLSConfiguration? = nil) {
        self.urls = urls
        self.token = token
        self.tls = tls
    }

    /// Creates a configuration for one URL, e.g. the Kubernetes Service.
    public init(url: String, token: BearerToken? = nil, tls: TLSConfiguration? = nil) {
        self.init(urls: [url], token: token, tls: tls)
    }
}
