import AffinityPeer
import AffinityProtocol
import AffinityServer

/// The replica's delivery coordinator serves the peer channel: an outcome another replica forwarded here is
/// delivered to the local subscribers (wait for the ack), else parked if the route still points here, else
/// answered `not_owner` with the replica that owns the key now. A legacy broadcast goes to this replica's
/// legacy-protocol clients only. When a peer stream breaks after `delivered` answers, the store remembers those
/// outcomes as acknowledged.
extension DeliveryCoordinator: PeerDeliveryHandler {
    /// Handles one forwarded outcome; throws an `AffinityError` when it could neither deliver nor park.
    package func deliver(_ outcome: Outcome, from caller: PeerCaller) async throws -> ForwardedDeliveryStatus {
        try await deliverForwarded(outcome)
    }

    /// Sends a legacy broadcast to this replica's legacy-protocol clients.
    package func deliverToLegacyClients(_ outcome: Outcome, from caller: PeerCaller) async throws {
        sendToLegacyClients(outcome)
    }

    /// The peer stream broke after these outcomes were answered `delivered`: the store remembers them as
    /// acknowledged, so that a copy the forwarding replica parked for want of the answer reaches nobody.
    package func deliveredAnswersMayBeLost(_ outcomes: [PeerDeliveredOutcome]) async {
        await rememberAcknowledgedInStore(outcomes.map { (key: $0.key, id: $0.id) })
    }
}
