/// What every WebSocket session and HTTP handler of one replica shares.
struct SessionEnvironment: Sendable {
    let configuration: AffinityConfiguration
    let registry: ConnectionRegistry
    let coordinator: DeliveryCoordinator
    let metrics: AffinityMetrics
    let readiness: Readiness

    func isDraining() -> Bool { readiness.isDraining }
}
