import AffinityProtocol

/// The failover decisions for one outcome that no local subscriber took, without I/O: park it here, or hand it
/// to the replica that holds its key's route, and when that replica does not take it (unreachable, killed,
/// draining, no longer the owner), park it only if the route still points at that replica, else follow the
/// route to its new owner, at most `maximumForwards` times.
///
/// The ``DeliveryCoordinator`` runs the actions against the store and the ``OutcomeForwarder`` and reports
/// their results back. Parking only while the route still names the replica that failed is what makes a
/// forward after a failover safe: a parked outcome is taken by the next subscriber of its key, wherever it
/// subscribes, and an outcome for a client that moved to a live replica follows it there instead.
struct ForwardingAttempt {
    /// What the coordinator must do next.
    enum Action: Equatable {
        /// Ask the store for the key's route, parking the outcome if the route is absent or this replica's
        /// (``OutcomeStore/routeOrPark(outcome:localReplica:)``).
        case routeOrPark
        /// Hand the outcome to the replica of the route over the peer channel.
        case forward(Route)
        /// The replica of the route did not take it: park unless the route moved
        /// (``OutcomeStore/park(outcome:ifRoutedTo:)``).
        case park(ifRoutedTo: String)
        /// Answer the worker; `offerParkedCopy`: the outcome was parked for a route of this replica (or none),
        /// so local subscribers that registered meanwhile must be offered it.
        case finish(DeliveryStatus, offerParkedCopy: Bool)
        /// The route kept moving: answer the worker `unavailable` (it retries).
        case routeKeepsMoving
    }

    /// What became of a forward.
    enum ForwardResult: Equatable {
        /// The owner's client acknowledged it, or the owner parked it.
        case answered(DeliveryStatus)
        /// The owner did not take it (no forwarder, unreachable, timed out, not the owner any more).
        case notTaken
    }

    /// Forwards left, counting the one in progress.
    private(set) var forwardsLeft: Int
    /// The replica of the forward in progress.
    private var forwardingTo: String?

    init(maximumForwards: Int) {
        forwardsLeft = max(1, maximumForwards)
    }

    /// The first action.
    func start() -> Action { .routeOrPark }

    /// The store's answer to ``Action/routeOrPark``.
    mutating func routed(_ result: ParkResult) -> Action {
        switch result {
        case .parked: return .finish(.parked, offerParkedCopy: true)
        case .alreadyAcknowledged: return .finish(.delivered, offerParkedCopy: false)
        case .routed(let route): return forward(to: route)
        }
    }

    /// The result of ``Action/forward(_:)``.
    mutating func forwarded(_ result: ForwardResult) -> Action {
        guard let replica = forwardingTo else { preconditionFailure("no forward in progress") }
        switch result {
        case .answered(let status):
            forwardingTo = nil
            return .finish(status, offerParkedCopy: false)
        case .notTaken:
            return .park(ifRoutedTo: replica)
        }
    }

    /// The store's answer to ``Action/park(ifRoutedTo:)``.
    mutating func parked(_ result: ParkResult) -> Action {
        forwardingTo = nil
        switch result {
        case .parked: return .finish(.parked, offerParkedCopy: false)
        case .alreadyAcknowledged: return .finish(.delivered, offerParkedCopy: false)
        case .routed(let route):
            forwardsLeft -= 1
            guard forwardsLeft > 0 else { return .routeKeepsMoving }
            return forward(to: route)
        }
    }

    private mutating func forward(to route: Route) -> Action {
        forwardingTo = route.replicaID
        return .forward(route)
    }
}
