public import AffinityProtocol

/// What the cluster layer may ask of a running replica: deliver an outcome another replica forwarded
/// here, and list the routes of the local subscriptions (to write them back to a shared store).
///
/// ```swift
/// let application = try buildApplication(configuration: configuration, logger: logger, metrics: export,
///                                        store: redisStore, forwarder: peerForwarder)
/// let peerServer = try PeerServer(configuration: peerConfiguration, credentials: credentials,
///                                 handler: application.localReplica, logger: logger)
/// ```
public struct LocalReplica: Sendable {
    private let coordinator: DeliveryCoordinator
    private let registry: ConnectionRegistry
    private let readiness: Readiness
    /// This replica's id.
    public let replicaID: String

    init(coordinator: DeliveryCoordinator, registry: ConnectionRegistry, readiness: Readiness, replicaID: String) {
        self.coordinator = coordinator
        self.registry = registry
        self.readiness = readiness
        self.replicaID = replicaID
    }

    /// Whether this replica holds clients of the legacy protocol now (the cluster records it in Redis, so that
    /// other replicas send it every outcome for them).
    public var holdsLegacyClients: Bool {
        coordinator.legacy?.holdsClients ?? false
    }

    /// Sends `outcome` to this replica's legacy clients only (another replica broadcasts it).
    public func sendToLegacyClients(_ outcome: Outcome) {
        coordinator.legacy?.sendToLocalClients(outcome)
    }

    /// Whether the replica is registered under its id in the cluster; `/health/ready` answers 503
    /// (`registering`) while it is not. A single replica is always registered.
    public func setRegistered(_ registered: Bool) {
        readiness.setRegistered(registered)
    }

    /// Delivers a forwarded outcome to the local subscribers and waits for an ack; else parks it if the
    /// route still points here; else reports the new owner. Never forwards it again.
    public func deliverForwarded(_ outcome: Outcome) async throws(AffinityError) -> ForwardedDeliveryStatus {
        try await coordinator.deliverForwarded(outcome)
    }

    /// Makes the store remember these outcomes as acknowledged, removing any parked copy. They were forwarded
    /// here and acknowledged by a local client, but the forwarding replica may not have received the
    /// `delivered` answer (the peer stream broke), and it parks what it got no answer for.
    public func rememberAcknowledgedInStore(_ outcomes: [(key: ProcessInstanceKey, id: String)]) async {
        await coordinator.rememberAcknowledgedInStore(outcomes.map { ParkedOutcomeReference(key: $0.key, id: $0.id) })
    }
}
