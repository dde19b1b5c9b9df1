/// How a replica serves the peer channel.
public struct PeerServerConfiguration: Sendable {
    /// The address to bind (`--host`; `0.0.0.0` in a container).
    public var host: String
    /// The port to bind (`--peer-port`); 0 picks a free port (tests), see ``PeerServer/listeningPort()``.
    public var port: Int
    /// This replica's id, returned in every answer.
    public var replicaID: String
    /// This process's instance id (random, new at every start; the replica registry holds the same value),
    /// returned by `Ping` so that a replica restarted under its id can tell whether the registered instance
    /// still answers at its address.
    public var instanceID: String
    /// The largest request message accepted, in bytes; larger requests fail with `resourceExhausted`.
    /// Must exceed the largest outcome the WebSocket side accepts (its variables plus a few hundred bytes).
    public var maxRequestBytes: Int
    /// The longest time a connection may stay idle before the server closes it; `nil` keeps it open.
    public var maxConnectionIdleTime: Duration?
    /// How many deliveries of one `DeliverStream` are handled at once; the stream is not read further
    /// (HTTP/2 flow control holds the caller back) until one of them answered.
    public var maxConcurrentStreamDeliveries: Int
    /// The timeout of a `DeliverStream` request that does not give one (`timeout_millis` 0).
    public var defaultStreamRequestTimeout: Duration
    /// How long a `DeliverStream` remembers the outcomes it answered `delivered`: if the stream breaks within
    /// this time after an answer, the answer may never have reached the caller, and the handler is told
    /// (``PeerDeliveryHandler/deliveredAnswersMayBeLost(_:)``). It covers the caller's longest wait for an
    /// answer (its ack timeout + 5 s) and the time HTTP/2 keepalive takes to notice a dead connection.
    public var deliveredAnswerMemory: Duration
    /// The most `delivered` answers one stream remembers (the oldest are forgotten first). Answers a caller may
    /// not have received are the few written just before the connection broke or stalled (a stalled connection
    /// brings no new requests, so no new answers): the default, 4096, is four times the deliveries one stream
    /// handles at once, and bounds the store writes a broken stream causes.
    public var maxDeliveredAnswersRemembered: Int

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - host: The address to bind.
    ///   - port: The port to bind (0 for any free port).
    ///   - replicaID: This replica's id.
    ///   - instanceID: This process's instance id (default: a new random one).
    ///   - maxRequestBytes: The largest request accepted (default 8 MiB).
    ///   - maxConnectionIdleTime: Idle connections are closed after this (default: never; the callers'
    ///     pools close the connections they no longer use).
    ///   - maxConcurrentStreamDeliveries: Deliveries handled at once per stream (default 1024).
    ///   - defaultStreamRequestTimeout: The timeout of a stream request without one (default 60 s).
    ///   - deliveredAnswerMemory: How long a stream remembers its `delivered` answers (default 30 s).
    ///   - maxDeliveredAnswersRemembered: The most `delivered` answers one stream remembers (default 4096).
    public init(
        host: String = "0.0.0.0",
        port: Int,
        replicaID: String,
        instanceID: String = PeerServerConfiguration.randomInstanceID(),
        maxRequestBytes: Int = 8 * 1024 * 1024,
        maxConnectionIdleTime: Duration? = nil,
        maxConcurrentStreamDeliveries: Int = 1024,
        defaultStreamRequestTimeout: Duration = .seconds(60),
        deliveredAnswerMemory: Duration = .seconds(30),
        maxDeliveredAnswersRemembered: Int = 4096
    ) {
        self.host = host
        self.port = port
        self.replicaID = replicaID
        self.instanceID = instanceID
        self.maxRequestBytes = maxRequestBytes
        self.maxConnectionIdleTime = maxConnectionIdleTime
        self.maxConcurrentStreamDeliveries = maxConcurrentStreamDeliveries
        self.defaultStreamRequestTimeout = defaultStreamRequestTimeout
        self.deliveredAnswerMemory = deliveredAnswerMemory
        self.maxDeliveredAnswersRemembered = maxDeliveredAnswersRemembered
    }

    /// A new random instance id: 32 hex digits.
    public static func randomInstanceID() -> String {
        var random = SystemRandomNumberGenerator()
        let high = String(random.next() as UInt64, radix: 16)
        let low = String(random.next() as UInt64, radix: 16)
        return String(repeating: "0", count: 16 - high.count) + high + String(repeating: "0", count: 16 - low.count)
            + low
    }
}
