import Metrics

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
    func record(_ status: PeerDeliveryStatus) {
        switch status {
        case .delivered: self.delivered.increment()
        case .parked: self.parked.increment()
        case .notOwner: self.notOwner.increment()
        }
    }
}
