public import AffinityProtocol

/// The shared state of the affinity service: routes (key -> replica + client) and parked outcomes.
///
/// The embedded ``InMemoryOutcomeStore`` implements it for a single replica; a Redis store
/// implements it for a cluster, where every method is one atomic script. Errors are
/// ``AffinityError``s: `unavailable` when the store cannot be reached, `too_large` when it is full.
public protocol OutcomeStore: Sendable {
    /// Route-and-take: atomically writes `key -> route` and returns the outcomes parked for `key`,
    /// oldest first, WITHOUT removing them (they are removed by ``acknowledge(key:id:)``).
    func subscribe(key: ProcessInstanceKey, route: Route) async throws(AffinityError) -> [Outcome]

    /// Removes the parked outcome `id` of `key` once a client acknowledged it. Unknown ids are ignored.
    func acknowledge(key: ProcessInstanceKey, id: String) async throws(AffinityError)

    /// Deletes the route of `key` only if it still is `route`.
    func unsubscribe(key: ProcessInstanceKey, route: Route) async throws(AffinityError)

    /// Check-and-park: when a route exists and points at a replica other than `localReplica`,
    /// returns it; otherwise appends `outcome` to the key's parked list (TTL = park TTL).
    func routeOrPark(outcome: Outcome, localReplica: String) async throws(AffinityError) -> RouteOrParkResult

    /// For a failed forward: parks `outcome` only if the route of its key still points at
    /// `replicaID` (or there is none), else returns the new route.
    func park(outcome: Outcome, ifRoutedTo replicaID: String) async throws(AffinityError) -> ConditionalParkResult

    /// Writes these routes (again), refreshing their TTLs; used while subscriptions live and after
    /// the store comes back from an outage.
    func refreshRoutes(_ routes: [ProcessInstanceKey: Route]) async throws(AffinityError)

    /// Whether the store can be reached right now; `/health/ready` answers 503 while it cannot.
    var isReachable: Bool { get }
}

extension OutcomeStore {
    /// An embedded store is always reachable.
    public var isReachable: Bool { true }
}
