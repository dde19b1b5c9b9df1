import Foundation

/// One outcome travelling over the peer channel, from the replica that received it from a worker to the
/// replica that owns the waiting client.
///
/// `variables` holds the raw JSON object exactly as the worker sent it; the peer channel never parses or
/// re-encodes it.
public struct PeerOutcome: Sendable, Hashable {
    /// The outcome id (the Zeebe job key); clients drop duplicates by this id.
    public var id: String
    /// The process instance key as a decimal string.
    public var key: String
    /// The raw JSON object of the outcome's variables, byte-for-byte.
    public var variables: Data
    /// The replica id of the replica that received the outcome from the worker.
    public var originReplica: String
    /// For the receiver's legacy-protocol clients only (the Node package's `PROCESS_OUTCOME` broadcast).
    public var legacyBroadcast: Bool

    /// Creates an outcome to forward.
    ///
    /// - Parameters:
    ///   - id: The outcome id.
    ///   - key: The process instance key (decimal digits).
    ///   - variables: The raw JSON object of the variables.
    ///   - originReplica: The replica id that received the outcome from the worker.
    ///   - legacyBroadcast: For the receiver's legacy-protocol clients only.
    public init(
        id: String, key: String, variables: Data, originReplica: String, legacyBroadcast: Bool = false
    ) {
        self.legacyBroadcast = legacyBroadcast
        self.id = id
        self.key = key
        self.variables = variables
        self.originReplica = originReplica
    }
}
