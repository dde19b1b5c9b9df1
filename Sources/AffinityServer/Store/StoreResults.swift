/// The answer of ``OutcomeStore/routeOrPark(outcome:localReplica:)``.
public enum RouteOrParkResult: Sendable, Hashable {
    /// A route points at another replica; forward the outcome there.
    case routed(Route)
    /// The outcome was parked for a later subscriber.
    case parked
}

/// The answer of ``OutcomeStore/park(outcome:ifRoutedTo:)``.
public enum ConditionalParkResult: Sendable, Hashable {
    /// The outcome was parked (the route still pointed at the given replica, or there was none).
    case parked
    /// The route moved meanwhile; forward to this one instead.
    case rerouted(Route)
}
