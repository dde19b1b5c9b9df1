/// Who is on the other end of a connection, as declared in `hello` and allowed by its token.
public enum PeerRole: String, Sendable, Hashable, CaseIterable {
    /// A front-end that subscribes to process instance keys and receives outcomes.
    case client
    /// A job worker that delivers outcomes.
    case worker
}

/// How the service answered a delivered outcome.
public enum DeliveryStatus: String, Sendable, Hashable {
    /// A subscribed client acknowledged the outcome.
    case delivered
    /// No client acknowledged it in time; it is stored until a client subscribes (or the park TTL ends).
    case parked
}
