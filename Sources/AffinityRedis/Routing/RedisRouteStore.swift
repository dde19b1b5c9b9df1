import Logging
import Metrics
import NIOCore

/// The routing operations of the affinity service on Redis: routes, parked outcomes and the replica registry.
///
/// Every operation is one atomic Lua script (one Redis command); the keys of a process instance share a hash
/// tag (`affinity:{K}:route`, `affinity:{K}:parked`, `affinity:{K}:outcomes`), so each script touches one slot
/// and runs unchanged on Redis Cluster. See docs/REDIS.md for the key schema and each script's semantics.
///
/// ```swift
/// let store = RedisRouteStore(client: redis, logger: logger)
/// let parked = try await store.subscribe(key: "2251799813685249", replica: "r1", clientId: "c", routeTTL: .seconds(60))
/// switch try await store.routeOrPark(key: k, id: job, payload: json, localReplica: "r3", parkTTL: .seconds(300),
///                                     maximumParkedPerKey: 100) {
/// case .routed(let owner): forward(to: owner)
/// case .parked: answerParked()
/// }
/// ```
public struct RedisRouteStore: Sendable {
    /// The Redis client the store runs on.
    public let client: RedisClient
    /// The prefix of every key, `affinity:` by default.
    public let prefix: String
    /// How many replicas must confirm a park or an acknowledgement (`WAIT`) before it is reported done; a
    /// short confirmation throws ``RedisError/Code/replication``.
    public let replication: RedisReplicationRequirement
    let logger: Logger

    /// The longest process instance key or replica id accepted.
    public static let maximumIdentifierLength = 256

    /// Creates a store on `client` with keys under `prefix`; parks and acknowledgements wait for
    /// `replication`.
    public init(
        client: RedisClient, prefix: String = "affinity:", replication: RedisReplicationRequirement = .none,
        logger: Logger
    ) {
        self.client = client
        self.prefix = prefix
        self.replication = replication
        self.logger = logger
    }

    /// Points the route of `key` at (`replica`, `clientId`) with `routeTTL` and returns the oldest outcomes parked
    /// for `key`: at most `pageCount`, and past the first at most `pageBytes` of payload. They stay parked until
    /// ``acknowledge(key:id:parkTTL:)``, so a crash between this call and the client's ack loses nothing.
    public func subscribe(
        key: String, replica: String, clientId: String, routeTTL: Duration, pageCount: Int, pageBytes: Int
    ) async throws -> ParkedOutcomePage {
        let keys = try instanceKeys(key)
        let reply = try await client.evaluate(
            RouteScripts.subscribe, keys: [keys.route, keys.parked, keys.outcomes],
            arguments: [
                RedisArgument(try identifier(replica)), RedisArgument(clientId), milliseconds(routeTTL),
                RedisArgument(max(1, pageCount)), RedisArgument(max(1, pageBytes)),
            ])
        let page = try parsePage(reply, operation: "subscribe")
        logger.trace("subscribed", metadata: ["affinity.key": "\(key)", "affinity.parked": "\(page.outcomes.count)"])
        return page
    }

    /// ``subscribe(key:replica:clientId:routeTTL:pageCount:pageBytes:)`` with a page of up to 1000 outcomes of any
    /// size, for callers that expect few.
    public func subscribe(
        key: String, replica: String, clientId: String, routeTTL: Duration
    ) async throws
        -> [ParkedOutcome]
    {
        try await subscribe(
            key: key, replica: replica, clientId: clientId, routeTTL: routeTTL, pageCount: 1000,
            pageBytes: Int(Int32.max)
        ).outcomes
    }

    /// The oldest outcomes parked for `key` (a page, as ``subscribe(key:replica:clientId:routeTTL:pageCount:pageBytes:)``
    /// returns it), without touching the route.
    public func parked(key: String, pageCount: Int, pageBytes: Int) async throws -> ParkedOutcomePage {
        let keys = try instanceKeys(key)
        let reply = try await client.evaluate(
            RouteScripts.parkedPage, keys: [keys.parked, keys.outcomes],
            arguments: [RedisArgument(max(1, pageCount)), RedisArgument(max(1, pageBytes))])
        return try parsePage(reply, operation: "parked")
    }

    /// Removes the parked outcome `id` of `key` (the client acknowledged it) and remembers the id as acknowledged
    /// for `parkTTL`, so that no later park hands it out again. Returns whether it was parked.
    @discardableResult
    public func acknowledge(key: String, id: String, parkTTL: Duration = .seconds(300)) async throws -> Bool {
        let keys = try instanceKeys(key)
        let reply = try await client.evaluate(
            RouteScripts.acknowledge, keys: [keys.parked, keys.outcomes, keys.acknowledged, keys.bytes],
            arguments: [RedisArgument(id), milliseconds(parkTTL)], replication: replication,
            confirmingWhen: { _ in true })
        guard let removed = reply.integer else { throw unexpected("acknowledge", reply) }
        return removed == 1
    }

    /// Deletes the route of `key` only if it still points at (`replica`, `clientId`); a nil `replica` leaves the
    /// route alone. The ids in `acknowledged`
    /// (outcomes the leaving subscriber acknowledged live) are remembered as acknowledged for `parkTTL`, and a
    /// parked copy of them is removed. Returns whether the route was deleted.
    @discardableResult
    public func unsubscribe(
        key: String, replica: String?, clientId: String, acknowledged: [String] = [],
        parkTTL: Duration = .seconds(300)
    ) async throws -> Bool {
        let keys = try instanceKeys(key)
        let reply = try await client.evaluate(
            RouteScripts.unsubscribe,
            keys: [keys.route, keys.parked, keys.outcomes, keys.acknowledged, keys.bytes],
            arguments: [
                RedisArgument(try replica.map(identifier) ?? ""), RedisArgument(clientId), milliseconds(parkTTL),
            ]
                + acknowledged.map { RedisArgument($0) })
        guard let deleted = reply.integer else { throw unexpected("unsubscribe", reply) }
        return deleted == 1
    }

    /// The hot path of an outcome that has no local subscriber: one Redis command that either returns the
    /// route (another replica owns `key`) or parks (`id`, `payload`) for `key` with `parkTTL`, in order, once
    /// per id. Throws ``RouteStoreError/Code/parkedLimitReached`` when `key` already holds
    /// `maximumParkedPerKey` outcomes, ``RouteStoreError/Code/parkedBytesLimitReached`` when it would hold more
    /// than `maximumParkedBytesPerKey` bytes, and ``RouteStoreError/Code/conflict`` when `id` is parked with
    /// another payload.
    public func routeOrPark(
        key: String, id: String, payload: ByteBuffer, localReplica: String, parkTTL: Duration,
        maximumParkedPerKey: Int, maximumParkedBytesPerKey: Int = Int(Int32.max)
    ) async throws -> RouteOrParkResult {
        switch try await parkUnlessRoutedElsewhere(
            key: key, id: id, payload: payload, replica: localReplica, parkTTL: parkTTL,
            maximumParkedPerKey: maximumParkedPerKey, maximumParkedBytesPerKey: maximumParkedBytesPerKey,
            operation: "routeOrPark")
        {
        case .routed(let owner):
            Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "routed")]).increment()
            return .routed(replica: owner)
        case .parked(let duplicate, let routedToReplica):
            Counter(label: "affinity.redis.route_or_park", dimensions: [("result", duplicate ? "duplicate" : "parked")])
                .increment()
            return .parked(duplicate: duplicate, routedHere: routedToReplica)
        case .acknowledged:
            Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "acknowledged")]).increment()
            return .acknowledged
        }
    }

    /// The failed-forward case: parks (`id`, `payload`) only if the route of `key` still points at `replica`
    /// (the owner that could not be reached) or is gone; if another replica took the key over, returns it.
    public func park(
        key: String, id: String, payload: ByteBuffer, ifRoutedTo replica: String, parkTTL: Duration,
        maximumParkedPerKey: Int = 1000, maximumParkedBytesPerKey: Int = Int(Int32.max)
    ) async throws -> ParkResult {
        switch try await parkUnlessRoutedElsewhere(
            key: key, id: id, payload: payload, replica: replica, parkTTL: parkTTL,
            maximumParkedPerKey: maximumParkedPerKey, maximumParkedBytesPerKey: maximumParkedBytesPerKey,
            operation: "park")
        {
        case .routed(let owner): return .rerouted(replica: owner)
        case .parked(let duplicate, _): return .parked(duplicate: duplicate)
        case .acknowledged: return .acknowledged
        }
    }

    /// Sets or refreshes each route, as one pipeline, only where it is absent or still points at the entry's
    /// replica: never steals a key another replica took over. Used for the periodic TTL refresh and to write
    /// routes back after Redis restarted. Results are in the order of `entries`.
    public func refreshRoutes(
        _ entries: [RouteEntry], routeTTL: Duration
    ) async
        -> [Result<RouteRefreshResult, any Error>]
    {
        await refreshRoutesCountingParked(entries, routeTTL: routeTTL).map { $0.map(\.result) }
    }

    /// ``refreshRoutes(_:routeTTL:)``, also returning how many outcomes are parked for each key whose route is
    /// the entry's replica's now: the subscribers there must read them (they were parked while the route was
    /// missing, or while a forward to this replica failed).
    public func refreshRoutesCountingParked(
        _ entries: [RouteEntry], routeTTL: Duration
    ) async -> [Result<(result: RouteRefreshResult, parked: Int), any Error>] {
        var calls: [RedisScriptCall] = []
        var invalid: [Int: any Error] = [:]
        for (index, entry) in entries.enumerated() {
            do {
                let keys = try instanceKeys(entry.key)
                calls.append(
                    RedisScriptCall(
                        keys: [keys.route, keys.parked],
                        arguments: [
                            RedisArgument(try identifier(entry.replica)), RedisArgument(entry.clientId),
                            milliseconds(routeTTL),
                        ]))
            } catch {
                invalid[index] = error
            }
        }
        var replies = await client.evaluateAll(RouteScripts.refreshRoute, calls: calls).makeIterator()
        return entries.indices.map { index -> Result<(result: RouteRefreshResult, parked: Int), any Error> in
            if let error = invalid[index] { return .failure(error) }
            guard let reply = replies.next() else {
                return .failure(RouteStoreError(code: .unexpectedReply, message: "refreshRoutes lost a reply"))
            }
            return reply.mapError { $0 as any Error }.flatMap { reply in
                guard let elements = reply.array, elements.count == 2, let kind = elements[0].string else {
                    return .failure(unexpected("refreshRoutes", reply))
                }
                switch (kind, elements[1]) {
                case ("refreshed", .integer(let parked)): return .success((.refreshed, Int(parked)))
                case ("restored", .integer(let parked)): return .success((.restored, Int(parked)))
                case ("taken", let owner):
                    guard let owner = owner.string else { return .failure(unexpected("refreshRoutes", reply)) }
                    return .success((.ownedByAnotherReplica(owner), 0))
                default: return .failure(unexpected("refreshRoutes", reply))
                }
            }
        }
    }

    private func parsePage(_ reply: RedisReply, operation: String) throws -> ParkedOutcomePage {
        guard let elements = reply.array, elements.count % 2 == 1, let more = elements.first?.integer else {
            throw unexpected(operation, reply)
        }
        var outcomes: [ParkedOutcome] = []
        outcomes.reserveCapacity(elements.count / 2)
        var index = 1
        while index < elements.count {
            guard let id = elements[index].string, let payload = elements[index + 1].bytes else {
                throw unexpected(operation, reply)
            }
            outcomes.append(ParkedOutcome(id: id, payload: payload))
            index += 2
        }
        return ParkedOutcomePage(outcomes: outcomes, hasMore: more == 1)
    }

    private enum ParkOutcome {
        case routed(String)
        case parked(duplicate: Bool, routedToReplica: Bool)
        case acknowledged
    }

    private func parkUnlessRoutedElsewhere(
        key: String, id: String, payload: ByteBuffer, replica: String, parkTTL: Duration, maximumParkedPerKey: Int,
        maximumParkedBytesPerKey: Int, operation: String
    ) async throws -> ParkOutcome {
        let keys = try instanceKeys(key)
        guard !id.isEmpty else { throw RouteStoreError(code: .invalidKey, message: "an outcome id must not be empty") }
        let reply = try await client.evaluate(
            RouteScripts.routeOrPark, keys: [keys.route, keys.parked, keys.outcomes, keys.acknowledged, keys.bytes],
            arguments: [
                RedisArgument(id), RedisArgument(payload), RedisArgument(try identifier(replica)),
                milliseconds(parkTTL), RedisArgument(max(0, maximumParkedPerKey)),
                RedisArgument(max(0, maximumParkedBytesPerKey)),
            ], replication: replication, confirmingWhen: Self.parkedSomething)
        guard let elements = reply.array, let kind = elements.first?.string, elements.count == 2 else {
            throw unexpected(operation, reply)
        }
        switch (kind, elements[1]) {
        case ("route", let owner):
            guard let owner = owner.string else { throw unexpected(operation, reply) }
            return .routed(owner)
        case ("parked", .integer(let here)):
            logger.trace("parked outcome", metadata: ["affinity.key": "\(key)", "affinity.outcome": "\(id)"])
            return .parked(duplicate: false, routedToReplica: here == 1)
        case ("duplicate", .integer(let here)):
            return .parked(duplicate: true, routedToReplica: here == 1)
        case ("acknowledged", _):
            return .acknowledged
        case ("conflict", _):
            throw RouteStoreError(
                code: .conflict, message: "outcome \(id) of key \(key) is parked already with another payload")
        case ("full-bytes", .integer(let bytes)):
            Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "full")]).increment()
            throw RouteStoreError(
                code: .parkedBytesLimitReached,
                message:
                    "key \(key) holds \(bytes) bytes of parked outcomes; this one would pass the limit of \(maximumParkedBytesPerKey)"
            )
        case ("full", .integer(let count)):
            Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "full")]).increment()
            throw RouteStoreError(
                code: .parkedLimitReached,
                message: "key \(key) already has \(count) parked outcomes (limit \(maximumParkedPerKey))")
        default:
            throw unexpected(operation, reply)
        }
    }
}

extension RedisRouteStore {
    /// Whether a reply of the route-or-park script stands for a park (new or repeated), which replicas must
    /// confirm: a duplicate's first copy may not have reached them either.
    static func parkedSomething(_ reply: RedisReply) -> Bool {
        let kind = reply.array?.first?.string
        return kind == "parked" || kind == "duplicate"
    }

    struct InstanceKeys {
        var route: String
        var parked: String
        var outcomes: String
        var acknowledged: String
        var bytes: String
    }

    /// The keys of process instance `key`, all with the hash tag `{key}`.
    func instanceKeys(_ key: String) throws(RouteStoreError) -> InstanceKeys {
        let tagged = "\(prefix){\(try identifier(key))}"
        return InstanceKeys(
            route: tagged + ":route", parked: tagged + ":parked", outcomes: tagged + ":outcomes",
            acknowledged: tagged + ":acknowledged", bytes: tagged + ":bytes")
    }

    /// The registry key of replica `id`.
    func replicaKey(_ id: String) throws(RouteStoreError) -> String {
        "\(prefix)replica:{\(try identifier(id))}"
    }

    func identifier(_ value: String) throws(RouteStoreError) -> String {
        guard !value.isEmpty, value.utf8.count <= Self.maximumIdentifierLength,
            !value.contains("{"), !value.contains("}")
        else {
            throw RouteStoreError(
                code: .invalidKey,
                message:
                    "'\(value.prefix(64))' is not a usable key or id (1 to \(Self.maximumIdentifierLength) bytes, no braces)"
            )
        }
        return value
    }

    func milliseconds(_ duration: Duration) -> RedisArgument {
        let (seconds, attoseconds) = duration.components
        return RedisArgument(Int(max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)))
    }

    /// The elements of an array reply of strings, or `[]`.
    func textWords(_ reply: RedisReply) -> [String] {
        guard let elements = reply.array else { return [] }
        let words = elements.compactMap(\.string)
        return words.count == elements.count ? words : []
    }

    func unexpected(_ operation: String, _ reply: RedisReply) -> RouteStoreError {
        RouteStoreError(code: .unexpectedReply, message: "\(operation) got an unexpected reply from Redis: \(reply)")
    }
}
