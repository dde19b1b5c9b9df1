public import AffinityProtocol
public import AffinityRedis
public import AffinityServer
public import Logging
import Metrics
import NIOCore

/// The shared ``OutcomeStore`` of a cluster: routes and parked outcomes in Redis, each operation one atomic
/// Lua script (``RouteScripts``) on the keys of one process instance (``RedisKeySchema``), so each runs in
/// one Redis Cluster slot.
///
/// While Redis is unreachable every operation fails at once with `unavailable` (the client does not queue
/// commands), so a worker is answered at once instead of waiting; a key with too many parked outcomes (or
/// bytes) answers `too_large`, an id parked with another payload `conflict`. Outcomes are parked as their
/// `outcome` frame and read back byte-for-byte, a page at a time. Parks and acknowledgements wait for
/// `replication` (`WAIT`); a short confirmation answers `unavailable`.
///
/// ```swift
/// let store = RedisOutcomeStore(client: redis, routeTTL: .seconds(90), parkTTL: .seconds(300),
///                               maxParkedPerKey: 1000, maxParkedBytesPerKey: 64 << 20, logger: logger)
/// ```
public struct RedisOutcomeStore: OutcomeStore {
    /// The Redis client the store runs on.
    public let client: RedisClient
    /// The key names.
    public let keys: RedisKeySchema
    /// How many Redis replicas must confirm a park or an acknowledgement.
    public let replication: RedisReplicationRequirement
    /// How long a route lives without a refresh.
    public let routeTTL: Duration
    /// How long a parked outcome (and an acknowledgement) is kept.
    public let parkTTL: Duration
    /// Parked outcomes per key; more are refused with `too_large`.
    public let maxParkedPerKey: Int
    /// Bytes of parked outcome frames per key; more are refused with `too_large`.
    public let maxParkedBytesPerKey: Int
    private let logger: Logger
    private let routeOrParkResults: RouteOrParkCounters

    /// Creates the store.
    public init(
        client: RedisClient, keys: RedisKeySchema = RedisKeySchema(), replication: RedisReplicationRequirement = .none,
        routeTTL: Duration, parkTTL: Duration, maxParkedPerKey: Int, maxParkedBytesPerKey: Int = 64 << 20,
        logger: Logger
    ) {
        self.client = client
        self.keys = keys
        self.replication = replication
        self.routeTTL = routeTTL
        self.parkTTL = parkTTL
        self.maxParkedPerKey = maxParkedPerKey
        self.maxParkedBytesPerKey = maxParkedBytesPerKey
        self.logger = logger
        self.routeOrParkResults = RouteOrParkCounters()
    }

    /// Whether the Redis connection is up now.
    public var isReachable: Bool { client.isConnected }

    /// Every replica of the cluster parks outcomes here.
    public var isShared: Bool { true }

    /// Points the route of `key` at `route` and returns the first page of its parked outcomes, which stay
    /// parked until acknowledged (see ``OutcomeStore/subscribe(key:route:page:)``).
    public func subscribe(
        key: ProcessInstanceKey, route: Route, page limit: ParkedPageLimit
    ) async throws(AffinityError) -> ParkedPage {
        let instance = keys.instance(key)
        let reply = try await run("subscribe") {
            try await client.evaluate(
                RouteScripts.subscribe, keys: [instance.route, instance.parked, instance.outcomes],
                arguments: [
                    RedisArgument(try RedisKeySchema.replicaID(route.replicaID)), RedisArgument(route.clientID),
                    RedisArgument(milliseconds: routeTTL), RedisArgument(limit.count), RedisArgument(limit.bytes),
                ])
        }
        return try decodePage(reply, key: key, operation: "subscribe")
    }

    /// The next page of parked outcomes, without touching the route (see ``OutcomeStore/parked(key:page:)``).
    public func parked(key: ProcessInstanceKey, page limit: ParkedPageLimit) async throws(AffinityError) -> ParkedPage {
        let instance = keys.instance(key)
        let reply = try await run("parked") {
            try await client.evaluate(
                RouteScripts.parkedPage, keys: [instance.parked, instance.outcomes],
                arguments: [RedisArgument(limit.count), RedisArgument(limit.bytes)])
        }
        return try decodePage(reply, key: key, operation: "parked")
    }

    /// Removes a parked outcome once acknowledged, and remembers the id as acknowledged for the park TTL.
    public func acknowledge(key: ProcessInstanceKey, id: String) async throws(AffinityError) {
        let instance = keys.instance(key)
        let reply = try await run("acknowledge") {
            try await client.evaluate(
                RouteScripts.acknowledge,
                keys: [instance.parked, instance.outcomes, instance.acknowledged, instance.bytes],
                arguments: [RedisArgument(id), RedisArgument(milliseconds: parkTTL)], replication: replication,
                confirmingWhen: { _ in true })
        }
        guard reply.integer != nil else { throw .unexpectedReply("acknowledge", reply) }
    }

    /// Deletes the route of `key` if it still is `route` (nil: leaves it alone), and remembers the ids
    /// acknowledged live, removing any parked copy of them.
    public func unsubscribe(
        key: ProcessInstanceKey, route: Route?, acknowledged: [String]
    ) async throws(AffinityError) {
        let instance = keys.instance(key)
        let replica = try route.map { route throws(AffinityError) in try RedisKeySchema.replicaID(route.replicaID) }
        let reply = try await run("unsubscribe") {
            try await client.evaluate(
                RouteScripts.unsubscribe,
                keys: [instance.route, instance.parked, instance.outcomes, instance.acknowledged, instance.bytes],
                arguments: [
                    RedisArgument(replica ?? ""), RedisArgument(route?.clientID ?? ""),
                    RedisArgument(milliseconds: parkTTL),
                ] + acknowledged.map { RedisArgument($0) })
        }
        guard reply.integer != nil else { throw .unexpectedReply("unsubscribe", reply) }
    }

    /// Check-and-park in one script: the route if another replica holds the key, else a park.
    public func routeOrPark(outcome: Outcome, localReplica: String) async throws(AffinityError) -> ParkResult {
        let result = try await parkUnlessRoutedElsewhere(outcome, replicaID: localReplica, operation: "routeOrPark")
        switch result {
        case .routed: routeOrParkResults.routed.increment()
        case .parked(let duplicate): (duplicate ? routeOrParkResults.duplicate : routeOrParkResults.parked).increment()
        case .alreadyAcknowledged: routeOrParkResults.acknowledged.increment()
        }
        return result
    }

    /// Parks only if the route still points at `replicaID` (or is gone); else the route it moved to.
    public func park(outcome: Outcome, ifRoutedTo replicaID: String) async throws(AffinityError) -> ParkResult {
        try await parkUnlessRoutedElsewhere(outcome, replicaID: replicaID, operation: "park")
    }

    /// Every (re)connection of the Redis client, including the one that is up when this is called.
    public func connectionRestored() -> AsyncStream<Void>? {
        let events = client.connectionEvents()
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

    /// Writes the routes back, as one pipeline, where they are absent or still this replica's (never over a
    /// route another replica took); throws the first failure. Returns the keys now routed here that have
    /// outcomes parked.
    public func refreshRoutes(
        _ routesToWrite: [ProcessInstanceKey: Route]
    ) async throws(AffinityError) -> Set<ProcessInstanceKey> {
        try requireConnection("refreshRoutes")
        var written: [ProcessInstanceKey] = []
        var calls: [RedisScriptCall] = []
        written.reserveCapacity(routesToWrite.count)
        calls.reserveCapacity(routesToWrite.count)
        for (key, route) in routesToWrite {
            let instance = keys.instance(key)
            written.append(key)
            calls.append(
                RedisScriptCall(
                    keys: [instance.route, instance.parked],
                    arguments: [
                        RedisArgument(try RedisKeySchema.replicaID(route.replicaID)), RedisArgument(route.clientID),
                        RedisArgument(milliseconds: routeTTL),
                    ]))
        }
        var waiting = Set<ProcessInstanceKey>()
        for (key, result) in zip(written, await client.evaluateAll(RouteScripts.refreshRoute, calls: calls)) {
            let reply: RedisReply
            switch result {
            case .success(let success): reply = success
            case .failure(let error): throw .store(error, operation: "refreshRoutes")
            }
            guard let elements = reply.array, elements.count == 2, let kind = elements[0].string else {
                throw .unexpectedReply("refreshRoutes", reply)
            }
            switch (kind, elements[1]) {
            case ("refreshed", .integer(let parked)), ("restored", .integer(let parked)):
                if parked > 0 { waiting.insert(key) }
            case ("taken", _):
                continue
            default:
                throw .unexpectedReply("refreshRoutes", reply)
            }
        }
        return waiting
    }

    /// The one script behind ``routeOrPark(outcome:localReplica:)`` and ``park(outcome:ifRoutedTo:)``.
    private func parkUnlessRoutedElsewhere(
        _ outcome: Outcome, replicaID: String, operation: String
    ) async throws(AffinityError) -> ParkResult {
        let instance = keys.instance(outcome.key)
        let reply = try await run(operation) {
            try await client.evaluate(
                RouteScripts.routeOrPark,
                keys: [instance.route, instance.parked, instance.outcomes, instance.acknowledged, instance.bytes],
                arguments: [
                    RedisArgument(outcome.id), RedisArgument(ByteBuffer(bytes: outcome.frame)),
                    RedisArgument(try RedisKeySchema.replicaID(replicaID)), RedisArgument(milliseconds: parkTTL),
                    RedisArgument(max(0, maxParkedPerKey)), RedisArgument(max(0, maxParkedBytesPerKey)),
                ], replication: replication, confirmingWhen: Self.parkedSomething)
        }
        guard let elements = reply.array, let kind = elements.first?.string else {
            throw .unexpectedReply(operation, reply)
        }
        switch (kind, elements.count) {
        case ("route", 3):
            guard let owner = elements[1].string, let client = elements[2].string else {
                throw .unexpectedReply(operation, reply)
            }
            return .routed(Route(replicaID: owner, clientID: client))
        case ("parked", 1):
            logger.trace(
                "parked outcome", metadata: ["affinity.key": "\(outcome.key)", "affinity.outcome": "\(outcome.id)"])
            return .parked(duplicate: false)
        case ("duplicate", 1):
            return .parked(duplicate: true)
        case ("acknowledged", 1):
            return .alreadyAcknowledged
        case ("conflict", 1):
            throw AffinityError(
                code: .conflict,
                message:
                    "outcome \(outcome.id) of key \(outcome.key) is parked already with another payload; the first is kept",
                ref: outcome.id)
        case ("full", 2):
            routeOrParkResults.full.increment()
            throw AffinityError(
                code: .tooLarge,
                message:
                    "too many outcomes are parked for this key: key \(outcome.key) already has \(elements[1].integer ?? 0) (limit \(maxParkedPerKey))",
                ref: outcome.id)
        case ("full-bytes", 2):
            routeOrParkResults.full.increment()
            throw AffinityError(
                code: .tooLarge,
                message:
                    "too many bytes are parked for this key: key \(outcome.key) holds \(elements[1].integer ?? 0) bytes; this one would pass the limit of \(maxParkedBytesPerKey)",
                ref: outcome.id)
        default:
            throw .unexpectedReply(operation, reply)
        }
    }

    /// Whether a reply of the route-or-park script stands for a park (new or repeated), which replicas must
    /// confirm: a duplicate's first copy may not have reached them either.
    static func parkedSomething(_ reply: RedisReply) -> Bool {
        let kind = reply.array?.first?.string
        return kind == "parked" || kind == "duplicate"
    }

    /// `{hasMore, id, frame, id, frame, ...}` as outcomes; a frame that no longer decodes is dropped (logged).
    private func decodePage(
        _ reply: RedisReply, key: ProcessInstanceKey, operation: String
    ) throws(AffinityError) -> ParkedPage {
        guard let elements = reply.array, elements.count % 2 == 1, let more = elements.first?.integer else {
            throw .unexpectedReply(operation, reply)
        }
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(elements.count / 2)
        var index = 1
        while index < elements.count {
            guard let id = elements[index].string, let frame = elements[index + 1].bytes else {
                throw .unexpectedReply(operation, reply)
            }
            do {
                outcomes.append(try Outcome.decodeDelivery(Array(frame.readableBytesView)))
            } catch {
                logger.warning(
                    "dropping an unreadable parked outcome",
                    metadata: ["affinity.key": "\(key)", "affinity.outcome": "\(id)", "error.message": "\(error)"])
            }
            index += 2
        }
        return ParkedPage(outcomes: outcomes, hasMore: more == 1)
    }

    /// Runs one Redis operation, failing at once while Redis is unreachable; Redis errors become the
    /// protocol's (``AffinityError/store(_:operation:)``).
    private func run(
        _ operation: String, _ body: () async throws -> RedisReply
    ) async throws(AffinityError) -> RedisReply {
        try requireConnection(operation)
        do {
            return try await body()
        } catch {
            throw .store(error, operation: operation)
        }
    }

    private func requireConnection(_ operation: String) throws(AffinityError) {
        guard client.isConnected else {
            throw AffinityError(code: .unavailable, message: "Redis is unreachable (\(operation)); retry later")
        }
    }
}

/// `affinity.redis.route_or_park` by result, made once per store: creating a counter asks the metrics
/// factory (a lock and a lookup), which the hot path of an outcome without a local subscriber paid per call.
private struct RouteOrParkCounters: Sendable {
    let routed = Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "routed")])
    let parked = Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "parked")])
    let duplicate = Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "duplicate")])
    let acknowledged = Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "acknowledged")])
    let full = Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "full")])
}
