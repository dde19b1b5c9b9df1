/// What every WebSocket session and HTTP handler of one replica shares.
struct SessionEnvironment: Sendable {
    let configuration: AffinityConfiguration
    let registry: ConnectionRegistry
    let coordinator: DeliveryCoordinator
    let metrics: AffinityMetrics
    let readiness: Readiness
    /// The WebSocket connections admitted, bounded by ``AffinityConfiguration/maxConnections``.
    let connectionSlots: ConnectionSlots
    /// The legacy protocol's clients and metrics, with `--legacy-protocol`.
    var legacy: (broadcaster: LegacyBroadcaster, metrics: LegacyMetrics)?

    func isDraining() -> Bool { readiness.isDraining }
}
