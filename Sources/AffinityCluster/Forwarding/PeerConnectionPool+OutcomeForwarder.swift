public import AffinityPeer
public import AffinityProtocol
public import AffinityServer

/// The peer pool forwards a replica's outcomes: to the replica of the key's route, at the address the
/// registry lists for it (``RedisReplicaRecords`` is the pool's directory), over the mutual-TLS peer channel,
/// waiting for the owner's answer (its client acked, or it parked the outcome).
///
/// Every failure throws `unavailable`; the ``DeliveryCoordinator`` then parks the outcome only if the route
/// still points at that owner, else forwards to the new owner. A `not_owner` answer is such a failure too.
extension PeerConnectionPool: OutcomeForwarder {
    /// Delivers `outcome` on the replica of `route`.
    public func forward(_ outcome: Outcome, to route: Route) async throws(AffinityError) -> DeliveryStatus {
        let status: ForwardedDeliveryStatus
        do {
            status = try await deliver(outcome, toReplica: route.replicaID)
        } catch {
            throw AffinityError(
                code: .unavailable, message: "replica \(route.replicaID) did not take the outcome",
                cause: SendableDescription(error.description))
        }
        switch status {
        case .delivered: return .delivered
        case .parked: return .parked
        case .notOwner(let owner):
            throw AffinityError(
                code: .unavailable,
                message: "replica \(route.replicaID) no longer owns key \(outcome.key) (owner: \(owner ?? "none"))")
        }
    }

    /// Sends `outcome` to the legacy-protocol clients of `replicaID` (a legacy broadcast: that replica sends it
    /// to its legacy clients only) and returns once it took it.
    public func sendToLegacyClients(_ outcome: Outcome, of replicaID: String) async throws(AffinityError) {
        do {
            _ = try await deliver(outcome, toReplica: replicaID, legacyBroadcast: true)
        } catch {
            throw AffinityError(
                code: .unavailable, message: "replica \(replicaID) did not take a legacy broadcast",
                cause: SendableDescription(error.description))
        }
    }
}

/// The registry is where the peer pool finds a replica's address.
extension RedisReplicaRecords: PeerDirectory {
    /// The address replica `replicaID` registered, or `nil` when it is not registered.
    ///
    /// - Throws: ``AffinityError`` when Redis cannot be read or the registered address is unusable.
    public func address(ofReplica replicaID: String) async throws -> PeerAddress? {
        let text: String?
        do {
            text = try await peerAddress(of: replicaID)
        } catch {
            throw AffinityError.store(error, operation: "lookupReplica")
        }
        guard let text else { return nil }
        guard let address = PeerAddress(parsing: text) else {
            throw AffinityError(
                code: .unavailable, message: "replica \(replicaID) registered an unusable address \(text)")
        }
        return address
    }
}
