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
    let logger: Logger

    /// The longest process instance key or replica id accepted.
    public static let maximumIdentifierLength = 256

    /// Creates a store on `client` with keys under `prefix`.
    public init(client: RedisClient, prefix: String = "affinity:", logger: Logger) {
        self.client = client
        self.prefix = prefix
        self.logger = logger
    }

    /// Points the route of `key` at (`replica`, `clientId`) with `routeTTL` and returns the outcomes parked for
    /// `key`, oldest first. They stay parked until ``acknowledge(key:id:)``, so a crash between this call and the
    /// client's ack loses nothing.
    public func subscribe(
        key: String, replica: String, clientId: String, routeTTL: Duration
    ) async throws
        -> [ParkedOutcome]
    {
        let keys = try instanceKeys(key)
        let reply = try await client.evaluate(
            RouteScripts.subscribe, keys: [keys.route, keys.parked, keys.outcomes],
            arguments: [RedisArgument(try identifier(replica)), RedisArgument(clientId), milliseconds(routeTTL)])
        guard let elements = reply.array, elements.count % 2 == 0 else { throw unexpected("subscribe", reply) }
        var outcomes: [ParkedOutcome] = []
        outcomes.reserveCapacity(elements.count / 2)
        var index = 0
        while index < elements.count {
            guard let id = elements[index].string, let payload = elements[index + 1].bytes else {
                throw unexpected("subscribe", reply)
            }
            outcomes.append(ParkedOutcome(id: id, payload: payload))
            index += 2
        }
        logger.trace("subscribed", metadata: ["affinity.key": "\(key)", "affinity.parked": "\(outcomes.count)"])
        return outcomes
    }

    /// Removes the parked outcome `id` of `key` (the client acknowledged it). Returns whether it was parked.
    @discardableResult
    public func acknowledge(key: String, id: String) async throws -> Bool {
        let keys = try instanceKeys(key)
        let reply = try await client.evaluate(
            RouteScripts.acknowledge, keys: [keys.parked, keys.outcomes], arguments: [RedisArgument(id)])
        guard let removed = reply.integer else { throw unexpected("acknowledge", reply) }
        return removed == 1
    }

    /// Deletes the route of `key` only if it still points at (`replica`, `clientId`). Returns whether it did.
    @discardableResult
    public func unsubscribe(key: String, replica: String, clientId: String) async throws -> Bool {
        let keys = try instanceKeys(key)
        let reply = try await client.evaluate(
            RouteScripts.unsubscribe, keys: [keys.route],
            arguments: [RedisArgument(try identifier(replica)), RedisArgument(clientId)])
        guard let deleted = reply.integer else { throw unexpected("unsubscribe", reply) }
        return deleted == 1
    }

    /// The hot path of an outcome that has no local subscriber: one Redis command that either returns the
    /// route (another replica owns `key`) or parks (`id`, `payload`) for `key` with `parkTTL`, in order, once
    /// per id. Throws ``RouteStoreError/Code/parkedLimitReached`` when `key` already holds
    /// `maximumParkedPerKey` outcomes.
    public func routeOrPark(
        key: String, id: String, payload: ByteBuffer, localReplica: String, parkTTL: Duration,
        maximumParkedPerKey: Int
    ) async throws -> RouteOrParkResult {
        switch try await parkUnlessRoutedElsewhere(
            key: key, id: id, payload: payload, replica: localReplica, parkTTL: parkTTL,
            maximumParkedPerKey: maximumParkedPerKey, operation: "routeOrPark")
        {
        case .routed(let owner):
            Counter(label: "affinity.redis.route_or_park", dimensions: [("result", "routed")]).increment()
            return .routed(replica: owner)
        case .parked(let duplicate, let routedToReplica):
            Counter(label: "affinity.redis.route_or_park", dimensions: [("result", duplicate ? "duplicate" : "parked")])
                .increment()
            return .parked(duplicate: duplicate, routedHere: routedToReplica)
        }
    }

    /// The failed-forward case: parks (`id`, `payload`) only if the route of `key` still points at `replica`
    /// (the owner that could not be reached) or is gone; if another replica took the key over, returns it.
    public func park(
        key: String, id: String, payload: ByteBuffer, ifRoutedTo replica: String, parkTTL: Duration,
        maximumParkedPerKey: Int = 1000
    ) async throws -> ParkResult {
        switch try await parkUnlessRoutedElsewhere(
            key: key, id: id, payload: payload, replica: replica, parkTTL: parkTTL,
            maximumParkedPerKey: maximumParkedPerKey, operation: "park")
        {
        case .routed(let owner): return .rerouted(replica: owner)
        case .parked(let duplicate, _): return .parked(duplicate: duplicate)
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
        var calls: [RedisScriptCall] = []
        var invalid: [Int: any Error] = [:]
        for (index, entry) in entries.enumerated() {
            do {
                let keys = try instanceKeys(entry.key)
                calls.append(
                    RedisScriptCall(
                        keys: [keys.route],
                        arguments: [
                            RedisArgument(try identifier(entry.replica)), RedisArgument(entry.clientId),
                            milliseconds(routeTTL),
                        ]))
            } catch {
                invalid[index] = error
            }
        }
        var replies = await client.evaluateAll(RouteScripts.refreshRoute, calls: calls).makeIterator()
        return entries.indices.map { index -> Result<RouteRefreshResult, any Error> in
            if let error = invalid[index] { return .failure(error) }
            guard let reply = replies.next() else {
                return .failure(RouteStoreError(code: .unexpectedReply, message: "refreshRoutes lost a reply"))
            }
            return reply.mapError { $0 as any Error }.flatMap { reply in
                let words = textWords(reply)
                switch words.first {
                case "refreshed" where words.count == 1: return .success(.refreshed)
                case "restored" where words.count == 1: return .success(.restored)
                case "taken" where words.count == 2: return .success(.ownedByAnotherReplica(words[1]))
                default: return .failure(unexpected("refreshRoutes", reply))
                }
            }
        }
    }

    private enum ParkOutcome {
        case routed(String)
        case parked(duplicate: Bool, routedToReplica: Bool)
    }

    private func parkUnlessRoutedElsewhere(
        key: String, id: String, payload: ByteBuffer, replica: String, parkTTL: Duration, maximumParkedPerKey: Int,
        operation: String
    ) async throws -> ParkOutcome {
        let keys = try instanceKeys(key)
        guard !id.isEmpty else { throw RouteStoreError(code: .invalidKey, message: "an outcome id must not be empty") }
        let reply = try await client.evaluate(
            RouteScripts.routeOrPark, keys: [keys.route, keys.parked, keys.outcomes],
            arguments: [
                RedisArgument(id), RedisArgument(payload), RedisArgument(try identifier(replica)),
                milliseconds(parkTTL), RedisArgument(max(0, maximumParkedPerKey)),
            ])
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
    struct InstanceKeys {
        var route: String
        var parked: String
        var outcomes: String
    }

    /// The keys of process instance `key`, all with the hash tag `{key}`.
    func instanceKeys(_ key: String) throws(RouteStoreError) -> InstanceKeys {
        let tagged = "\(prefix){\(try identifier(key))}"
        return InstanceKeys(route: tagged + ":route", parked: tagged + ":parked", outcomes: tagged + ":outcomes")
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
