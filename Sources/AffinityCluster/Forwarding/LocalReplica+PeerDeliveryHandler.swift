public import AffinityPeer
public import AffinityProtocol
public import AffinityServer

/// The replica itself serves the peer channel: an outcome another replica forwarded here goes to this
/// replica's delivery coordinator, which delivers it to the local subscribers and waits for the ack, else
/// parks it if the route still points here, else answers `not_owner` with the replica that owns the key
/// now. A legacy broadcast goes to this replica's legacy-protocol clients only.
extension LocalReplica: PeerDeliveryHandler {
    /// Handles one forwarded outcome; throws an `AffinityError` when it could neither deliver nor park.
    public func deliver(_ outcome: Outcome, from caller: PeerCaller) async throws -> ForwardedDeliveryStatus {
        try await deliverForwarded(outcome)
    }

    /// Sends a legacy broadcast to this replica's legacy-protocol clients.
    public func deliverToLegacyClients(_ outcome: Outcome, from caller: PeerCaller) async throws {
        sendToLegacyClients(outcome)
    }
}
