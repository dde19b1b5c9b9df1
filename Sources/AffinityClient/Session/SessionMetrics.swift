import CoreMetrics

/// The metrics of an ``AffinitySession`` (OpenTelemetry-style names).
struct SessionMetrics: Sendable {
    let requests: Meter
    let connected: Gauge
    let reconnects: Counter
    let outcomesReceived: Counter
    let duplicates: Counter
    let timeouts: Counter

    init(factory: any MetricsFactory) {
        requests = Meter(label: "affinity_client_pending_requests", factory: factory)
        connected = Gauge(label: "affinity_client_connected", factory: factory)
        reconnects = Counter(label: "affinity_client_disconnects_total", factory: factory)
        outcomesReceived = Counter(label: "affinity_client_outcomes_received_total", factory: factory)
        duplicates = Counter(label: "affinity_client_duplicate_outcomes_total", factory: factory)
        timeouts = Counter(label: "affinity_client_request_timeouts_total", factory: factory)
    }
}
