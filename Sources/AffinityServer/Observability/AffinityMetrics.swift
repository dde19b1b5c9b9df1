import AffinityProtocol
public import CoreMetrics

/// The service's metrics, created from an injected `MetricsFactory` (the executable bootstraps
/// Prometheus; tests pass their own registry).
///
/// Names follow OpenTelemetry style: `affinity_connections{role}`, `affinity_subscriptions`,
/// `affinity_outcomes_received_total`, `…_delivered_total`, `…_parked_total`, `…_expired_total`,
/// `…_rejected_total{code}`, `affinity_delivery_duration_seconds`, `affinity_slow_consumer_closes_total`,
/// `affinity_connections_refused_total` (upgrades over `--max-connections`) and
/// `affinity_handshake_timeouts_total` (connections closed before their request head arrived).
public struct AffinityMetrics: Sendable {
    let clientConnections: Meter
    let workerConnections: Meter
    let pendingConnections: Meter
    let subscriptions: Meter
    let outcomesReceived: Counter
    let outcomesDelivered: Counter
    let outcomesParked: Counter
    let outcomesExpired: Counter
    let deliveryDuration: CoreMetrics.Timer
    let slowConsumerCloses: Counter
    let connectionsRefused: Counter
    let handshakeTimeouts: Counter
    private let factory: any MetricsFactory

    /// Creates every metric from `factory`.
    public init(factory: any MetricsFactory) {
        self.factory = factory
        clientConnections = Meter(label: "affinity_connections", dimensions: [("role", "client")], factory: factory)
        workerConnections = Meter(label: "affinity_connections", dimensions: [("role", "worker")], factory: factory)
        pendingConnections = Meter(label: "affinity_connections", dimensions: [("role", "none")], factory: factory)
        subscriptions = Meter(label: "affinity_subscriptions", factory: factory)
        outcomesReceived = Counter(label: "affinity_outcomes_received_total", factory: factory)
        outcomesDelivered = Counter(label: "affinity_outcomes_delivered_total", factory: factory)
        outcomesParked = Counter(label: "affinity_outcomes_parked_total", factory: factory)
        outcomesExpired = Counter(label: "affinity_outcomes_expired_total", factory: factory)
        deliveryDuration = CoreMetrics.Timer(
            label: "affinity_delivery_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
        slowConsumerCloses = Counter(label: "affinity_slow_consumer_closes_total", factory: factory)
        connectionsRefused = Counter(label: "affinity_connections_refused_total", factory: factory)
        handshakeTimeouts = Counter(label: "affinity_handshake_timeouts_total", factory: factory)
    }

    /// Counts a rejected outcome or message under its error code.
    func rejected(_ code: AffinityError.Code) {
        Counter(label: "affinity_outcomes_rejected_total", dimensions: [("code", code.rawValue)], factory: factory)
            .increment()
    }

    func connections(for role: PeerRole?) -> Meter {
        switch role {
        case .client: clientConnections
        case .worker: workerConnections
        case nil: pendingConnections
        }
    }
}

/// How the `/metrics` endpoint renders the metrics: the factory the library records into and a
/// function producing the Prometheus text format.
public struct MetricsExport: Sendable {
    /// The factory every metric is created from.
    public var factory: any MetricsFactory
    /// Renders the current values in the Prometheus text exposition format.
    public var render: @Sendable () -> [UInt8]

    /// Creates an export.
    public init(factory: any MetricsFactory, render: @escaping @Sendable () -> [UInt8]) {
        self.factory = factory
        self.render = render
    }
}
