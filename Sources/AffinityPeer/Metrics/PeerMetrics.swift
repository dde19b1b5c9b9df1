import AffinityProtocol
import Metrics
import Synchronization

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
/// | `affinity_peer_streams_opened_total` | counter | |
struct PeerMetrics: Sendable {
    let factory: any MetricsFactory
    let tlsReloadSucceeded: Counter
    let tlsReloadFailed: Counter
    let connectionsAccepted: Counter
    let connectionsOpened: Counter
    let serverHandshakeFailures: Counter
    let clientHandshakeFailures: Counter
    /// The forward metrics by result (`delivered`, `parked`, `not_owner` and every error code).
    let forwards: [String: PeerForwardMetrics]
    /// The received-delivery counters by status.
    let received: PeerReceivedMetrics
    /// `DeliverStream`s the pool started.
    let streamsOpened: Counter

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
        var forwards: [String: PeerForwardMetrics] = [:]
        for result in ["delivered", "parked", "not_owner"] + PeerDeliveryError.Code.allCases.map(\.rawValue) {
            forwards[result] = PeerForwardMetrics(result: result, factory: factory)
        }
        self.forwards = forwards
        self.received = PeerReceivedMetrics(factory: factory)
        self.streamsOpened = Counter(label: "affinity_peer_streams_opened_total", factory: factory)
    }

    /// Records one forward's result and latency.
    func recordForward(result: String, duration: Duration) {
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        if let metrics = self.forwards[result] {
            metrics.count.increment()
            metrics.duration.recordNanoseconds(nanoseconds)
            return
        }
        Counter(label: "affinity_peer_forwards_total", dimensions: [("result", result)], factory: self.factory)
            .increment()
        Timer(label: "affinity_peer_forward_duration_seconds", dimensions: [("result", result)], factory: self.factory)
            .recordNanoseconds(nanoseconds)
    }
}

/// The counter and timer of one forward result, made once (a metric made per forward costs a registry
/// lookup with its label and dimensions every time).
struct PeerForwardMetrics: Sendable {
    let count: Counter
    let duration: Timer

    init(result: String, factory: any MetricsFactory) {
        self.count = Counter(
            label: "affinity_peer_forwards_total", dimensions: [("result", result)], factory: factory)
        self.duration = Timer(
            label: "affinity_peer_forward_duration_seconds", dimensions: [("result", result)], factory: factory)
    }
}

/// The `affinity_peer_deliveries_received_total` counters, one per status, made once.
struct PeerReceivedMetrics: Sendable {
    let delivered: Counter
    let parked: Counter
    let notOwner: Counter
    let invalid: Counter
    let error: Counter

    init(factory: any MetricsFactory) {
        func counter(_ status: String) -> Counter {
            Counter(
                label: "affinity_peer_deliveries_received_total", dimensions: [("status", status)], factory: factory)
        }
        self.delivered = counter("delivered")
        self.parked = counter("parked")
        self.notOwner = counter("not_owner")
        self.invalid = counter("invalid")
        self.error = counter("error")
    }

    /// Counts one handled delivery by its status.
    func record(_ status: ForwardedDeliveryStatus) {
        switch status {
        case .delivered: self.delivered.increment()
        case .parked: self.parked.increment()
        case .notOwner: self.notOwner.increment()
        }
    }
}

/// A thread-safe count of connections, shared with NIO channel callbacks.
final class PeerConnectionCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// Adds one.
    func increment() {
        self.count.add(1, ordering: .relaxed)
    }

    /// The current count.
    var value: Int {
        self.count.load(ordering: .relaxed)
    }
}
