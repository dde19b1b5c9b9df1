/// Where a subscribed key is served: the replica holding the subscription and the client on it.
public struct Route: Sendable, Hashable, CustomStringConvertible {
    /// The replica id that holds the subscription.
    public var replicaID: String
    /// The `clientId` the subscriber gave in `hello`.
    public var clientID: String

    /// Creates a route.
    public init(replicaID: String, clientID: String) {
        self.replicaID = replicaID
        self.clientID = clientID
    }

    /// `replica/client`.
    public var description: String { "\(replicaID)/\(clientID)" }
}
