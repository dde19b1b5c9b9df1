import Metrics

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
