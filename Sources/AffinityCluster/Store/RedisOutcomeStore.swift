public import AffinityProtocol
public import AffinityRedis
public import AffinityServer
public import Logging
import NIOCore

/// The shared ``OutcomeStore`` of a cluster: routes and parked outcomes in Redis, one atomic script per
/// operation (``RedisRouteStore``).
///
/// While Redis is unreachable every operation fails at once with `unavailable` (the client does not queue
/// commands), so a worker is answered at once instead of waiting; a key with too many parked outcomes
/// answers `too_large`. Outcomes are parked as their `outcome` frame and read back byte-for-byte.
///
/// ```swift
/// let store = RedisOutcomeStore(routes: RedisRouteStore(client: redis, logger: logger), routeTTL: .seconds(90),
///                               parkTTL: .seconds(300), maxParkedPerKey: 1000, logger: logger)
/// ```
public struct RedisOutcomeStore: OutcomeStore {
    /// The Redis operations.
    public let routes: RedisRouteStore
    /// How long a route lives without a refresh.
    public let routeTTL: Duration
    /// How long a parked outcome is kept.
    public let parkTTL: Duration
    /// Parked outcomes per key; more are refused with `too_large`.
    public let maxParkedPerKey: Int
    private let logger: Logger

    /// Creates the store.
    public init(routes: RedisRouteStore, routeTTL: Duration, parkTTL: Duration, maxParkedPerKey: Int, logger: Logger) {
        self.routes = routes
        self.routeTTL = routeTTL
        self.parkTTL = parkTTL
        self.maxParkedPerKey = maxParkedPerKey
        self.logger = logger
    }

    /// Whether the Redis connection is up now.
    public var isReachable: Bool { routes.client.isConnected }

    /// Route-and-take (see ``OutcomeStore/subscribe(key:route:)``).
    public func subscribe(key: ProcessInstanceKey, route: Route) async throws(AffinityError) -> [Outcome] {
        try requireConnection("subscribe")
        let parked: [ParkedOutcome]
        do {
            parked = try await routes.subscribe(
                key: key.description, replica: route.replicaID, clientId: route.clientID, routeTTL: routeTTL)
        } catch {
            throw .store(error, operation: "subscribe")
        }
        return parked.compactMap { entry in
            do {
                return try Outcome.decodeDelivery(Array(entry.payload.readableBytesView))
            } catch {
                logger.warning(
                    "dropping an unreadable parked outcome",
                    metadata: [
                        "affinity.key": "\(key)", "affinity.outcome": "\(entry.id)", "error.message": "\(error)",
                    ])
                return nil
            }
        }
    }

    /// Removes a parked outcome once acknowledged.
    public func acknowledge(key: ProcessInstanceKey, id: String) async throws(AffinityError) {
        try requireConnection("acknowledge")
        do {
            try await routes.acknowledge(key: key.description, id: id)
        } catch {
            throw .store(error, operation: "acknowledge")
        }
    }

    /// Deletes the route of `key` if it still is `route`.
    public func unsubscribe(key: ProcessInstanceKey, route: Route) async throws(AffinityError) {
        try requireConnection("unsubscribe")
        do {
            try await routes.unsubscribe(key: key.description, replica: route.replicaID, clientId: route.clientID)
        } catch {
            throw .store(error, operation: "unsubscribe")
        }
    }

    /// Check-and-park in one script.
    public func routeOrPark(
        outcome: Outcome, localReplica: String
    ) async throws(AffinityError) -> AffinityServer.RouteOrParkResult {
        try requireConnection("routeOrPark")
        do {
            switch try await routes.routeOrPark(
                key: outcome.key.description, id: outcome.id, payload: ByteBuffer(bytes: outcome.frame),
                localReplica: localReplica, parkTTL: parkTTL, maximumParkedPerKey: maxParkedPerKey)
            {
            case .routed(let owner): return .routed(Route(replicaID: owner, clientID: ""))
            case .parked: return .parked
            }
        } catch {
            throw .store(error, operation: "routeOrPark")
        }
    }

    /// Parks only if the route still points at `replicaID` (or is gone).
    public func park(
        outcome: Outcome, ifRoutedTo replicaID: String
    ) async throws(AffinityError) -> ConditionalParkResult {
        try requireConnection("park")
        do {
            switch try await routes.park(
                key: outcome.key.description, id: outcome.id, payload: ByteBuffer(bytes: outcome.frame),
                ifRoutedTo: replicaID, parkTTL: parkTTL, maximumParkedPerKey: maxParkedPerKey)
            {
            case .parked: return .parked
            case .rerouted(let owner): return .rerouted(Route(replicaID: owner, clientID: ""))
            }
        } catch {
            throw .store(error, operation: "park")
        }
    }

    /// Writes the routes back (never over a route another replica took); throws the first failure.
    public func refreshRoutes(_ routesToWrite: [ProcessInstanceKey: Route]) async throws(AffinityError) {
        try requireConnection("refreshRoutes")
        let entries = routesToWrite.map { key, route in
            RouteEntry(key: key.description, replica: route.replicaID, clientId: route.clientID)
        }
        for result in await routes.refreshRoutes(entries, routeTTL: routeTTL) {
            if case .failure(let error) = result { throw .store(error, operation: "refreshRoutes") }
        }
    }

    private func requireConnection(_ operation: String) throws(AffinityError) {
        guard routes.client.isConnected else {
            throw AffinityError(code: .unavailable, message: "Redis is unreachable (\(operation)); retry later")
        }
    }
}
