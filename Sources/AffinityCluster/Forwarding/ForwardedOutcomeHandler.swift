public import AffinityPeer
import AffinityProtocol
public import AffinityServer
public import Logging

/// The receiving side of the peer channel: delivers a forwarded outcome to this replica's local
/// subscribers and waits for the ack, else parks it if the route still points here, else answers
/// `not_owner` with the replica that owns the key now. A legacy broadcast goes to this replica's legacy-protocol
/// clients only.
public struct ForwardedOutcomeHandler: PeerDeliveryHandler {
    private let replica: LocalReplica
    private let logger: Logger

    /// Creates the handler for `replica` (``AffinityApplication/localReplica``).
    public init(replica: LocalReplica, logger: Logger) {
        self.replica = replica
        self.logger = logger
    }

    /// Handles one forwarded outcome; throws an ``AffinityError`` when it could neither deliver nor park.
    public func deliver(_ forwarded: PeerOutcome, from caller: PeerCaller) async throws -> PeerDeliveryStatus {
        guard let key = ProcessInstanceKey(forwarded.key) else {
            throw AffinityError.badRequest("\(forwarded.key) is not a process instance key", ref: forwarded.id)
        }
        let outcome = try Outcome(id: forwarded.id, key: key, variables: Array(forwarded.variables))
        if forwarded.legacyBroadcast {
            // for this replica's legacy-protocol clients only; the sending replica handled everything else
            replica.sendToLegacyClients(outcome)
            return .delivered
        }
        switch try await replica.deliverForwarded(outcome) {
        case .delivered: return .delivered
        case .parked: return .parked
        case .notOwner(let route): return .notOwner(owner: route.replicaID)
        }
    }
}
