import AffinityPeer

/// The peer addresses of replicas read from the registry, each kept for a short time so that a burst of
/// forwards to one replica costs one registry lookup. I/O-free; the caller passes the clock.
struct PeerAddressCache {
    private struct Entry {
        var address: PeerAddress
        var expires: ContinuousClock.Instant
    }

    /// How long an address is trusted without asking the registry again.
    let lifetime: Duration
    private var entries: [String: Entry] = [:]

    init(lifetime: Duration) {
        self.lifetime = lifetime
    }

    /// The cached address of `replicaID`, if it has not expired at `now`.
    mutating func address(of replicaID: String, at now: ContinuousClock.Instant) -> PeerAddress? {
        guard let entry = entries[replicaID] else { return nil }
        guard now < entry.expires else {
            entries[replicaID] = nil
            return nil
        }
        return entry.address
    }

    /// Remembers the address the registry gave for `replicaID` at `now`.
    mutating func store(_ address: PeerAddress, for replicaID: String, at now: ContinuousClock.Instant) {
        entries[replicaID] = Entry(address: address, expires: now + lifetime)
    }

    /// Forgets `replicaID` (its peer could not be reached: it may have moved or died).
    mutating func forget(_ replicaID: String) {
        entries[replicaID] = nil
    }

    /// The number of cached replicas.
    var count: Int { entries.count }
}
