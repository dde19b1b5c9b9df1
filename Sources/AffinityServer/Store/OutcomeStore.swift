public import AffinityProtocol
public import Logging

/// The shared state of the affinity service: routes (key -> replica + client) and parked outcomes.
///
/// The embedded ``InMemoryOutcomeStore`` implements it for a single replica; a Redis store
/// implements it for a cluster, where every method is one atomic script. Errors are
/// ``AffinityError``s: `unavailable` when the store cannot be reached, `too_large` when it is full,
/// `conflict` when an outcome id is parked already with another payload.
///
/// The store remembers the ids that clients acknowledged (for the park TTL): such an outcome is never
/// parked again, so a late park (a forward that timed out, a worker's retry) cannot hand it to the next
/// subscriber of its key.
public protocol OutcomeStore: Sendable {
    /// Route-and-take: atomically writes `key -> route` and returns the first page of the outcomes parked
    /// for `key`, oldest first, WITHOUT removing them (they are removed by ``acknowledge(key:id:)``).
    func subscribe(
        key: ProcessInstanceKey, route: Route, page: ParkedPageLimit
    ) async throws(AffinityError)
        -> ParkedPage

    /// The first page of the outcomes parked for `key`, oldest first, without touching its route. A
    /// subscriber reads the next page once the outcomes of the previous one were acknowledged (and so removed).
    func parked(key: ProcessInstanceKey, page: ParkedPageLimit) async throws(AffinityError) -> ParkedPage

    /// Removes the parked outcome `id` of `key` once a client acknowledged it, and remembers the id as
    /// acknowledged. Unknown ids are remembered too.
    func acknowledge(key: ProcessInstanceKey, id: String) async throws(AffinityError)

    /// Deletes the route of `key` only if it still is `route` (nil: leaves the route alone). `acknowledged` are
    /// ids that the leaving
    /// subscriber acknowledged while they were delivered live: they are remembered as acknowledged, and a
    /// parked copy that a late park left behind is removed.
    func unsubscribe(key: ProcessInstanceKey, route: Route?, acknowledged: [String]) async throws(AffinityError)

    /// Check-and-park: when a route exists and points at a replica other than `localReplica`,
    /// returns it; otherwise appends `outcome` to the key's parked list (TTL = park TTL). The same id with
    /// the same payload parks once; with another payload it throws `conflict`.
    func routeOrPark(outcome: Outcome, localReplica: String) async throws(AffinityError) -> ParkResult

    /// For a failed forward: parks `outcome` only if the route of its key still points at
    /// `replicaID` (or there is none), else returns the new route (`routed`).
    func park(outcome: Outcome, ifRoutedTo replicaID: String) async throws(AffinityError) -> ParkResult

    /// Writes these routes (again) where they are absent or still ours, refreshing their TTLs; used while
    /// subscriptions live and after the store comes back from an outage. Returns the keys among them that
    /// have outcomes parked and whose route is this replica's now: their subscribers must read them.
    func refreshRoutes(_ routes: [ProcessInstanceKey: Route]) async throws(AffinityError) -> Set<ProcessInstanceKey>

    /// Whether the store can be reached right now; `/health/ready` answers 503 while it cannot.
    var isReachable: Bool { get }

    /// Whether other replicas park outcomes in this store too (Redis). Then a late park can come from anywhere,
    /// so the ids a replica's clients acknowledged live must reach the store when the key's last local
    /// subscriber leaves (``unsubscribe(key:route:acknowledged:)``). An embedded store is one replica's alone,
    /// whose own memory of acknowledgements covers every park it makes.
    var isShared: Bool { get }

    /// Yields each time the store's connection is established again after it was lost (a restart, a failover),
    /// so that the replica writes its routes back at once; nil for a store without a connection. One stream per
    /// call.
    func connectionRestored() -> AsyncStream<Void>?
}

extension OutcomeStore {
    /// An embedded store is always reachable.
    public var isReachable: Bool { true }

    /// An embedded store is not shared.
    public var isShared: Bool { false }

    /// An embedded store has no connection to lose.
    public func connectionRestored() -> AsyncStream<Void>? { nil }
}

extension OutcomeStore {
    /// Remembers `ids` of `key` as acknowledged and removes any parked copy of them, leaving the route alone: the
    /// write an unsubscribe makes for the ids acknowledged live (no `WAIT` for a Redis replica). For outcomes a
    /// client acknowledged whose `delivered` answer was lost or late on the peer channel, so that the copy the
    /// forwarding replica parked meanwhile reaches nobody.
    public func rememberAcknowledged(_ ids: [String], of key: ProcessInstanceKey) async throws(AffinityError) {
        try await unsubscribe(key: key, route: nil, acknowledged: ids)
    }

    /// Remembers each outcome as acknowledged, one write per key (``rememberAcknowledged(_:of:)``). Both
    /// replicas of a forward call it when the peer channel lost or delayed a `delivered` answer, and nobody waits
    /// for it, so a write that fails is logged as a warning instead of thrown.
    public func rememberAcknowledged(_ outcomes: [(key: ProcessInstanceKey, id: String)], logger: Logger) async {
        var idsByKey: [ProcessInstanceKey: [String]] = [:]
        for outcome in outcomes { idsByKey[outcome.key, default: []].append(outcome.id) }
        var failed = 0
        var lastError: AffinityError?
        for (key, ids) in idsByKey {
            do {
                try await rememberAcknowledged(ids, of: key)
            } catch {
                failed += 1
                lastError = error
            }
        }
        if let lastError {
            logger.warning(
                "the store could not remember outcomes as acknowledged",
                metadata: [
                    "affinity.outcomes": "\(outcomes.count)", "affinity.keys.failed": "\(failed)",
                    "error.message": "\(lastError.message)",
                ])
        }
    }
}
