/// What the cluster layer may ask of a running replica besides delivering (that is its
/// ``DeliveryCoordinator``'s): whether it holds legacy clients, and whether it is registered (readiness).
///
/// ```swift
/// let application = try buildApplication(configuration: configuration, eventLoopGroup: group, logger: logger,
///                                        metrics: export, store: redisStore, forwarder: peerPool)
/// application.localReplica.setRegistered(false) // until the registry holds its id
/// ```
public struct LocalReplica: Sendable {
    private let coordinator: DeliveryCoordinator
    private let readiness: Readiness
    /// This replica's id.
    public let replicaID: String

    init(coordinator: DeliveryCoordinator, readiness: Readiness, replicaID: String) {
        self.coordinator = coordinator
        self.readiness = readiness
        self.replicaID = replicaID
    }

    /// Whether this replica holds clients of the legacy protocol now (the cluster records it in Redis, so that
    /// other replicas send it every outcome for them).
    public var holdsLegacyClients: Bool {
        coordinator.legacy?.holdsClients ?? false
    }

    /// Whether the replica is registered under its id in the cluster; `/health/ready` answers 503
    /// (`registering`) while it is not. A single replica is always registered.
    public func setRegistered(_ registered: Bool) {
        readiness.setRegistered(registered)
    }
}
