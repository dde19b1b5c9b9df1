public import AffinityProtocol

/// The answer of both parking operations, ``OutcomeStore/routeOrPark(outcome:localReplica:)`` and
/// ``OutcomeStore/park(outcome:ifRoutedTo:)`` (one script in Redis, one answer type all the way up).
public enum ParkResult: Sendable, Hashable {
    /// The key's route points at another replica (for `park(outcome:ifRoutedTo:)`: the route moved there):
    /// forward the outcome to it. The route names the subscribed client too.
    case routed(Route)
    /// The outcome is parked for the key's next subscriber; `duplicate`: it was parked already, with the
    /// same payload (a worker's retry), and is kept once.
    case parked(duplicate: Bool)
    /// A client acknowledged this outcome id already: it is not parked again (never handed to anyone twice).
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
