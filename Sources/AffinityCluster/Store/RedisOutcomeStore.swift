public import AffinityProtocol
public import AffinityRedis
public import AffinityServer
public import Logging
import NIOCore

/// The shared ``OutcomeStore`` of a cluster: routes and parked outcomes in Redis, one atomic script per
/// operation (``RedisRouteStore``).
///
/// While Redis is unreachable every operation fails at once with `unavailable` (the client does not queue
/// commands), so a worker is answered at once instead of waiting; a key with too many parked outcomes (or
/// bytes) answers `too_large`, an id parked with another payload `conflict`. Outcomes are parked as their
/// `outcome` frame and read back byte-for-byte, a page at a time.
///
/// ```swift
/// let store = RedisOutcomeStore(routes: RedisRouteStore(client: redis, logger: logger), routeTTL: .seconds(90),
///                               parkTTL: .seconds(300), maxParkedPerKey: 1000, maxParkedBytesPerKey: 64 << 20,
///                               logger: logger)
/// ```
public struct RedisOutcomeStore: OutcomeStore {
    /// The Redis operations.
    public let routes: RedisRouteStore
    /// How long a route lives without a refresh.
    public let routeTTL: Duration
    /// How long a parked outcome (and an acknowledgement) is kept.
    public let parkTTL: Duration
    /// Parked outcomes per key; more are refused with `too_large`.
    public let maxParkedPerKey: Int
    /// Bytes of parked outcome frames per key; more are refused with `too_large`.
    public let maxParkedBytesPerKey: Int
    private let logger: Logger

    /// Creates the store.
    public init(
        routes: RedisRouteStore, routeTTL: Duration, parkTTL: Duration, maxParkedPerKey: Int,
        maxParkedBytesPerKey: Int = 64 << 20, logger: Logger
    ) {
        self.routes = routes
        self.routeTTL = routeTTL
        self.parkTTL = parkTTL
        self.maxParkedPerKey = maxParkedPerKey
        self.maxParkedBytesPerKey = maxParkedBytesPerKey
        self.logger = logger
    }

    /// Whether the Redis connection is up now.
    public var isReachable: Bool { routes.client.isConnected }

    /// Route-and-take (see ``OutcomeStore/subscribe(key:route:page:)``).
    public func subscribe(
        key: ProcessInstanceKey, route: Route, page limit: ParkedPageLimit
    ) async throws(AffinityError) -> ParkedPage {
        try requireConnection("subscribe")
        let page: ParkedOutcomePage
        do {
            page = try await routes.subscribe(
                key: key.description, replica: route.replicaID, clientId: route.clientID, routeTTL: routeTTL,
                pageCount: limit.count, pageBytes: limit.bytes)
        } catch {
            throw .store(error, operation: "subscribe")
        }
        return decode(page, key: key)
    }

    /// The next page of parked outcomes (see ``OutcomeStore/parked(key:page:)``).
    public func parked(key: ProcessInstanceKey, page limit: ParkedPageLimit) async throws(AffinityError) -> ParkedPage {
        try requireConnection("parked")
        let page: ParkedOutcomePage
        do {
            page = try await routes.parked(key: key.description, pageCount: limit.count, pageBytes: limit.bytes)
        } catch {
            throw .store(error, operation: "parked")
        }
        return decode(page, key: key)
    }

    /// Removes a parked outcome once acknowledged, and remembers the id.
    public func acknowledge(key: ProcessInstanceKey, id: String) async throws(AffinityError) {
        try requireConnection("acknowledge")
        do {
            try await routes.acknowledge(key: key.description, id: id, parkTTL: parkTTL)
        } catch {
            throw .store(error, operation: "acknowledge")
        }
    }

    /// Every replica of the cluster parks outcomes here.
    public var isShared: Bool { true }

    /// Every (re)connection of the Redis client, including the one that is up when this is called.
    public func connectionRestored() -> AsyncStream<Void>? {
        let events = routes.client.connectionEvents()
        return AsyncStream { continuation in
            let task = Task {
                for await event in events {
                    if case .connected = event { continuation.yield() }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Deletes the route of `key` if it still is `route`, and remembers the ids acknowledged live.
    public func unsubscribe(
        key: ProcessInstanceKey, route: Route?, acknowledged: [String]
    ) async throws(AffinityError) {
        try requireConnection("unsubscribe")
        do {
            try await routes.unsubscribe(
                key: key.description, replica: route?.replicaID, clientId: route?.clientID ?? "",
                acknowledged: acknowledged, parkTTL: parkTTL)
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
                localReplica: localReplica, parkTTL: parkTTL, maximumParkedPerKey: maxParkedPerKey,
                maximumParkedBytesPerKey: maxParkedBytesPerKey)
            {
            case .routed(let owner): return .routed(Route(replicaID: owner, clientID: ""))
            case .parked: return .parked
            case .acknowledged: return .alreadyAcknowledged
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
                ifRoutedTo: replicaID, parkTTL: parkTTL, maximumParkedPerKey: maxParkedPerKey,
                maximumParkedBytesPerKey: maxParkedBytesPerKey)
            {
            case .parked: return .parked
            case .rerouted(let owner): return .rerouted(Route(replicaID: owner, clientID: ""))
            case .acknowledged: return .alreadyAcknowledged
            }
        } catch {
            throw .store(error, operation: "park")
        }
    }

    /// Writes the routes back (never over a route another replica took); throws the first failure. Returns
    /// the keys now routed here that have outcomes parked.
    public func refreshRoutes(
        _ routesToWrite: [ProcessInstanceKey: Route]
    ) async throws(AffinityError) -> Set<ProcessInstanceKey> {
        try requireConnection("refreshRoutes")
        let keys = Array(routesToWrite.keys)
        let entries = keys.map { key in
            let route = routesToWrite[key]!
            return RouteEntry(key: key.description, replica: route.replicaID, clientId: route.clientID)
        }
        var waiting = Set<ProcessInstanceKey>()
        for (key, result) in zip(keys, await routes.refreshRoutesCountingParked(entries, routeTTL: routeTTL)) {
            switch result {
            case .failure(let error):
                throw .store(error, operation: "refreshRoutes")
            case .success((.ownedByAnotherReplica, _)):
                continue
            case .success((_, let parked)):
                if parked > 0 { waiting.insert(key) }
            }
        }
        return waiting
    }

    private func decode(_ page: ParkedOutcomePage, key: ProcessInstanceKey) -> ParkedPage {
        let outcomes = page.outcomes.compactMap { entry -> Outcome? in
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
        return ParkedPage(outcomes: outcomes, hasMore: page.hasMore)
    }

    private func requireConnection(_ operation: String) throws(AffinityError) {
        guard routes.client.isConnected else {
            throw AffinityError(code: .unavailable, message: "Redis is unreachable (\(operation)); retry later")
        }
    }
}
