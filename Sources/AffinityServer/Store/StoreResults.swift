public import AffinityProtocol

/// The answer of ``OutcomeStore/routeOrPark(outcome:localReplica:)``.
public enum RouteOrParkResult: Sendable, Hashable {
    /// A route points at another replica; forward the outcome there.
    case routed(Route)
    /// The outcome was parked for a later subscriber (or was already, with the same payload).
    case parked
    /// A client acknowledged this outcome id already: it is not parked again (never handed to anyone twice).
    case alreadyAcknowledged
}

/// The answer of ``OutcomeStore/park(outcome:ifRoutedTo:)``.
public enum ConditionalParkResult: Sendable, Hashable {
    /// The outcome was parked (the route still pointed at the given replica, or there was none).
    case parked
    /// The route moved meanwhile; forward to this one instead.
    case rerouted(Route)
    /// A client acknowledged this outcome id already: nothing was parked.
    case alreadyAcknowledged
}

/// How much of a key's parked backlog one read returns: at most `count` outcomes and, past the first one,
/// at most `bytes` of outcome frames. Subscribers take a backlog page by page, so neither a Redis reply nor a
/// connection's outbound queue grows with the backlog.
public struct ParkedPageLimit: Sendable, Hashable {
    /// Outcomes per page.
    public var count: Int
    /// Frame bytes per page; the first outcome is always included, whatever its size.
    public var bytes: Int

    /// Creates a limit (both at least 1).
    public init(count: Int, bytes: Int) {
        self.count = max(1, count)
        self.bytes = max(1, bytes)
    }
}

/// The oldest parked outcomes of a key.
public struct ParkedPage: Sendable, Equatable {
    /// The outcomes, oldest first.
    public var outcomes: [Outcome]
    /// Whether more outcomes are parked behind this page.
    public var hasMore: Bool

    /// Creates a page.
    public init(outcomes: [Outcome], hasMore: Bool) {
        self.outcomes = outcomes
        self.hasMore = hasMore
    }

    /// Nothing parked.
    public static let empty = ParkedPage(outcomes: [], hasMore: false)
}
