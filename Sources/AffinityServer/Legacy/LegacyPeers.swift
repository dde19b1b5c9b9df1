public import AffinityProtocol

/// The other replicas of a cluster that hold clients of the legacy protocol, and the way to their clients
/// (cluster mode; a single replica has none). Implemented by the cluster layer on Redis and the peer channel.
public protocol LegacyPeers: Sendable {
    /// The ids of the other replicas that hold legacy clients now (a recent view, refreshed in the background).
    func replicasHoldingLegacyClients() -> [String]

    /// Sends `outcome` to the legacy clients of `replica` and returns once that replica has queued it for them.
    func sendToLegacyClients(_ outcome: Outcome, of replica: String) async throws(AffinityError)
}
