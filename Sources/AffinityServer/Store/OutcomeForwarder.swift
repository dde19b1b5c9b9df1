public import AffinityProtocol

/// Hands an outcome to the replica that holds the subscription for its key (cluster mode).
///
/// A single replica has no forwarder: there, ``OutcomeStore/routeOrPark(outcome:localReplica:)``
/// can only return a route to the local replica, which means park.
public protocol OutcomeForwarder: Sendable {
    /// Delivers `outcome` on the replica of `route` and returns how it was answered there.
    /// Throws `unavailable` when that replica cannot be reached.
    func forward(_ outcome: Outcome, to route: Route) async throws(AffinityError) -> DeliveryStatus
}
