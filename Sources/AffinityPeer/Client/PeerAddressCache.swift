/// The peer addresses of replicas read from the registry, each kept for a short time so that a burst of
/// forwards to one replica costs one registry lookup. I/O-free; the caller passes the clock.
///
/// It also remembers the last address each replica registered, past the lifetime: when a lookup finds a
/// replica gone from the registry or registered at another address (a pod restarted with a new IP), the
/// old address is returned once no replica uses it any more, so that the caller closes its connection
/// (a long-lived replica would otherwise keep one client per address its peers ever had).
struct PeerAddressCache {
    private struct Entry {
        var address: PeerAddress
        var expires: ContinuousClock.Instant
    }

    /// How long an address is trusted without asking the registry again.
    let lifetime: Duration
    private var entries: [String: Entry] = [:]
    private var lastKnown: [String: PeerAddress] = [:]

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

    /// Remembers the address the registry gave for `replicaID` at `now`. Returns the address the replica had
    /// before, if it changed and no other replica uses it: its connection can go.
    @discardableResult
    mutating func store(
        _ address: PeerAddress, for replicaID: String, at now: ContinuousClock.Instant
    ) -> PeerAddress? {
        entries[replicaID] = Entry(address: address, expires: now + lifetime)
        let previous = lastKnown.updateValue(address, forKey: replicaID)
        return previous == address ? nil : previous.flatMap(unused)
    }

    /// The registry has no entry for `replicaID` any more (it deregistered, or its lease ran out). Returns
    /// its last address, if no other replica uses it: its connection can go.
    mutating func unregistered(_ replicaID: String) -> PeerAddress? {
        entries[replicaID] = nil
        return lastKnown.removeValue(forKey: replicaID).flatMap(unused)
    }

    private func unused(_ address: PeerAddress) -> PeerAddress? {
        lastKnown.values.contains(address) ? nil : address
    }

    /// Forgets `replicaID` (its peer could not be reached: it may have moved or died).
    mutating func forget(_ replicaID: String) {
        entries[replicaID] = nil
    }

    /// The number of cached replicas.
    var count: Int { entries.count }
}
