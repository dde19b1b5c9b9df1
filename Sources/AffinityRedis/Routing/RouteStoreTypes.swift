import NIOCore

/// An outcome parked in Redis for a process instance key: its id and its payload, byte-for-byte.
public struct ParkedOutcome: Sendable, Hashable {
    /// The outcome id (the Zeebe job key).
    public var id: String
    /// The payload as it was parked (the outcome JSON).
    public var payload: ByteBuffer

    /// Creates a parked outcome.
    public init(id: String, payload: ByteBuffer) {
        self.id = id
        self.payload = payload
    }
}

/// The oldest parked outcomes of a key, one page of them.
public struct ParkedOutcomePage: Sendable, Hashable {
    /// The outcomes, oldest first.
    public var outcomes: [ParkedOutcome]
    /// Whether more outcomes are parked behind this page.
    public var hasMore: Bool

    /// Creates a page.
    public init(outcomes: [ParkedOutcome], hasMore: Bool) {
        self.outcomes = outcomes
        self.hasMore = hasMore
    }
}

/// The result of ``RedisRouteStore/routeOrPark(key:id:payload:localReplica:parkTTL:maximumParkedPerKey:maximumParkedBytesPerKey:)``.
public enum RouteOrParkResult: Sendable, Hashable {
    /// A client acknowledged this id already (within the park TTL): nothing was parked.
    case acknowledged
    /// The key is routed to another replica: forward the outcome there.
    case routed(replica: String)
    /// The outcome is parked (or was already, when `duplicate`). `routedHere` means the route points at the
    /// local replica although the caller found no local subscription: re-check the local subscriptions, since
    /// a client may have subscribed in between; if one exists now, deliver the parked outcome to it.
    case parked(duplicate: Bool, routedHere: Bool)
}

/// The result of ``RedisRouteStore/park(key:id:payload:ifRoutedTo:parkTTL:maximumParkedPerKey:maximumParkedBytesPerKey:)``.
public enum ParkResult: Sendable, Hashable {
    /// A client acknowledged this id already (within the park TTL): nothing was parked.
    case acknowledged
    /// Parked (or already parked, when `duplicate`).
    case parked(duplicate: Bool)
    /// The route moved to another replica meanwhile: forward there instead.
    case rerouted(replica: String)
}

/// One route to write back or refresh: process instance key, owning replica, subscribed client.
public struct RouteEntry: Sendable, Hashable {
    /// The process instance key.
    public var key: String
    /// The replica that holds the subscription.
    public var replica: String
    /// The subscribed client's id.
    public var clientId: String

    /// Creates an entry.
    public init(key: String, replica: String, clientId: String) {
        self.key = key
        self.replica = replica
        self.clientId = clientId
    }
}

/// What ``RedisRouteStore/refreshRoutes(_:routeTTL:)`` did with one route.
public enum RouteRefreshResult: Sendable, Hashable {
    /// The route pointed at us; its TTL is refreshed.
    case refreshed
    /// The route was missing (expired, or Redis restarted empty) and is written back.
    case restored
    /// Another replica owns the key now; the route was left alone.
    case ownedByAnotherReplica(String)
}

/// What a heartbeat found.
public enum HeartbeatResult: Sendable, Hashable {
    /// Still ours; the TTL is refreshed.
    case refreshed
    /// The registration is gone (it expired, or Redis restarted empty): register again.
    case expired
    /// Another instance registered the id: this instance has lost it and must stop serving as that replica.
    case takenOver
}

/// What ``RedisRouteStore/register(id:peerAddress:instanceNonce:ttl:replacing:)`` found.
public enum ReplicaRegistration: Sendable, Hashable {
    /// Registered (or refreshed) for this instance.
    case registered
    /// Another instance holds the id: its peer address and instance nonce.
    case taken(address: String, instanceNonce: String)
}
