import Metrics

/// The peer channel's metrics (swift-metrics; the executable bootstraps Prometheus).
///
/// | name | type | dimensions |
/// |---|---|---|
/// | `affinity_peer_forwards_total` | counter | `result`: delivered, parked, not_owner, or a ``PeerDeliveryError/Code`` |
/// | `affinity_peer_forward_duration_seconds` | timer | `result` as above |
/// | `affinity_peer_deliveries_received_total` | counter | `status`: delivered, parked, not_owner, invalid, error |
/// | `affinity_peer_connections_accepted_total` | counter | |
/// | `affinity_peer_connections_opened_total` | counter | |
/// | `affinity_peer_tls_handshake_failures_total` | counter | `side`: server (a caller was refused), client (a peer server was refused or refused us) |
/// | `affinity_peer_tls_reloads_total` | counter | `result`: success, failure |
struct PeerMetrics: Sendable {
    let factory: any MetricsFactory
    let tlsReloadSucceeded: Counter
    let tlsReloadFailed: Counter
    let connectionsAccepted: Counter
    let connectionsOpened: Counter
    let serverHandshakeFailures: Counter
    let clientHandshakeFailures: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.tlsReloadSucceeded = Counter(
            label: "affinity_peer_tls_reloads_total", dimensions: [("result", "success")], factory: factory)
        self.tlsReloadFailed = Counter(
            label: "affinity_peer_tls_reloads_total", dimensions: [("result", "failure")], factory: factory)
        self.connectionsAccepted = Counter(label: "affinity_peer_connections_accepted_total", factory: factory)
        self.connectionsOpened = Counter(label: "affinity_peer_connections_opened_total", factory: factory)
        self.serverHandshakeFailures = Counter(
            label: "affinity_peer_tls_handshake_failures_total", dimensions: [("side", "server")], factory: factory)
        self.clientHandshakeFailures = Counter(
            label: "affinity_peer_tls_handshake_failures_total", dimensions: [("side", "client")], factory: factory)
    }

    /// Records one forward's result and latency.
    func recordForward(result: String, duration: Duration) {
        Counter(label: "affinity_peer_forwards_total", dimensions: [("result", result)], factory: self.factory)
            .increment()
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        Timer(label: "affinity_peer_forward_duration_seconds", dimensions: [("result", result)], factory: self.factory)
            .recordNanoseconds(nanoseconds)
    }

    /// Records one received delivery's answer.
    func recordReceived(status: String) {
        Counter(
            label: "affinity_peer_deliveries_received_total", dimensions: [("status", status)], factory: self.factory
        )
        .increment()
    }
}
