/// Who answers at a peer address: the replica id and the instance id of its process (see
/// ``PeerServerConfiguration/instanceID``).
public struct PeerIdentity: Sendable, Hashable {
    /// The replica id.
    public var replicaID: String
    /// The instance id of the process, new at every start.
    public var instanceID: String

    /// Creates an identity.
    public init(replicaID: String, instanceID: String) {
        self.replicaID = replicaID
        self.instanceID = instanceID
    }
}
