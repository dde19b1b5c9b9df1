/// How the service answered a delivered outcome.
public enum DeliveryStatus: String, Sendable, Hashable {
    /// A subscribed client acknowledged the outcome.
    case delivered
    /// No client acknowledged it in time; it is stored until a client subscribes (or the park TTL ends).
    case parked
}
