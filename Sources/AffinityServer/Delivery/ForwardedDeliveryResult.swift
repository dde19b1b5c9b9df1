/// What became of an outcome that another replica forwarded to this one (see ``LocalReplica``).
public enum ForwardedDeliveryResult: Sendable, Hashable, CustomStringConvertible {
    /// A local subscriber acknowledged it.
    case delivered
    /// It was parked: the route of its key still pointed at this replica (or there was none).
    case parked
    /// The route of its key points at another replica now; nothing was parked.
    case notOwner(Route)

    /// `delivered`, `parked` or `not_owner(replica/client)`.
    public var description: String {
        switch self {
        case .delivered: "delivered"
        case .parked: "parked"
        case .notOwner(let route): "not_owner(\(route))"
        }
    }
}
