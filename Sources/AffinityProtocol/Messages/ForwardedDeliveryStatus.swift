/// What the replica that owns a key did with an outcome another replica forwarded to it: the owner's
/// delivery answers with it, and the peer channel carries it back to the forwarding replica unchanged
/// (docs/PEER.md).
public enum ForwardedDeliveryStatus: Sendable, Hashable, CustomStringConvertible {
    /// A subscriber of the owner acknowledged the outcome.
    case delivered
    /// The owner parked the outcome: the route of its key still pointed at it (or there was none).
    case parked
    /// The route of the key names another replica now (`owner`, when the route names one); nothing was
    /// parked.
    case notOwner(owner: String?)

    /// `delivered`, `parked` or `not_owner(<owner>)`.
    public var description: String {
        switch self {
        case .delivered: "delivered"
        case .parked: "parked"
        case .notOwner(let owner): "not_owner(\(owner ?? "none"))"
        }
    }
}
